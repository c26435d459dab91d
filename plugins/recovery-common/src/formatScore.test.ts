import { formatScore } from './types';

describe('formatScore', () => {
  it("writes a learned dependency's score to two decimals, however many the analysis kept", () => {
    expect([0.8237, 0.8, 1, 0.996, 0.70001].map(formatScore)).toEqual([
      '0.82',
      '0.80',
      '1.00',
      '1.00',
      '0.70',
    ]);
  });
});
