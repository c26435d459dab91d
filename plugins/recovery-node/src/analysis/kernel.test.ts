import { parseKernelShape, parsePlainDecimal } from './kernel';

const FORMAT =
  'expected piecewise, gamma[:k] or lognormal[:sigma], k and sigma plain decimals';

describe('plain decimals', () => {
  it('are digits with at most one point and a digit last; nothing else Number() would take', () => {
    for (const [text, value] of [
      ['3', 3],
      ['0.5', 0.5],
      ['.5', 0.5],
      ['007', 7],
      ['12.25', 12.25],
    ] as const) {
      expect(parsePlainDecimal(text)).toBe(value);
    }
    for (const text of [
      '1e3',
      '1E3',
      '5.',
      '-1',
      '+1',
      ' 2',
      '2 ',
      '0x10',
      '0b1',
      '1_000',
      '1.2.3',
      '',
      '.',
      'Infinity',
      'NaN',
      '١',
    ]) {
      expect(parsePlainDecimal(text)).toBeNaN();
    }
  });

  it('are what a kernel shape takes as its parameter, and only those', () => {
    expect(parseKernelShape('gamma:2.5')).toEqual({
      shape: 'gamma',
      gammaShape: 2.5,
    });
    expect(parseKernelShape('lognormal:.5')).toEqual({
      shape: 'lognormal',
      lognormalSigma: 0.5,
    });
    // A plain decimal out of range says so, rather than that it is no number.
    expect(() => parseKernelShape('gamma:.5')).toThrow(
      'kernel gammaShape must be a finite number over 1 (got 0.5)',
    );
    for (const parameter of ['1e3', '5.', '-1', ' 2', '0x10', '']) {
      expect(() => parseKernelShape(`gamma:${parameter}`)).toThrow(FORMAT);
      expect(() => parseKernelShape(`lognormal:${parameter}`)).toThrow(FORMAT);
    }
  });
});
