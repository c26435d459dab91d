import { runAnalysis } from './main';

// Both options are read before any file: with no file, an option taken ends at the empty input.
const refusal = (opts: { threshold?: string; kernelPeak?: string }) =>
  runAnalysis([], opts).then(
    () => 'analysed',
    (error: Error) => error.message,
  );

describe('numbers of analyze options', () => {
  it('--threshold takes a plain decimal only', async () => {
    for (const threshold of ['.5', '0.75', '1'])
      expect(await refusal({ threshold })).toMatch(/^empty input/);
    for (const threshold of ['1e-1', '5.', '-1', ' 0.5', '0x1', '']) {
      expect(await refusal({ threshold })).toBe(
        `--threshold: expected a plain decimal in (0, 1] such as 0.7 (no exponent, sign or spaces), got '${threshold}'`,
      );
    }
  });

  it('--kernel-peak takes minutes as a plain decimal, else a duration', async () => {
    for (const kernelPeak of ['5', '.5', '2.5', '90s'])
      expect(await refusal({ kernelPeak })).toMatch(/^empty input/);
    for (const kernelPeak of ['1e1', '5.', '-1', ' 5', '0x10']) {
      expect(await refusal({ kernelPeak })).toBe(
        `--kernel-peak: must be minutes, or a duration such as 5s, 90s or 1m30s, got '${kernelPeak}'`,
      );
    }
  });
});
