import { render, screen } from '@testing-library/react';
import App from './App';

describe('App', () => {
  const env = process.env;
  afterEach(() => {
    process.env = env;
  });

  it('starts on the new frontend system and offers guest sign-in', async () => {
    process.env = {
      ...env,
      NODE_ENV: 'test',
      APP_CONFIG: [
        {
          data: {
            app: {
              title: 'Backstage Recovery',
              baseUrl: 'http://localhost:3000',
            },
            backend: { baseUrl: 'http://localhost:7007' },
          },
          context: 'test',
        },
      ] as any,
    };

    render(App.createRoot());

    expect(
      await screen.findByText('Guest', {}, { timeout: 20_000 }),
    ).toBeInTheDocument();
  });
});
