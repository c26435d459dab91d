import { messageOf } from './messageOf';

describe('messageOf', () => {
  it('says what an error says, whatever was thrown', () => {
    expect(messageOf(new Error('engine unreachable'))).toBe(
      'engine unreachable',
    );
    expect(messageOf({ message: 'socket hang up' })).toBe('socket hang up');
    expect(messageOf('refused')).toBe('refused');
    expect(messageOf(undefined)).toBe('undefined');
    expect(messageOf(null)).toBe('null');
  });
});
