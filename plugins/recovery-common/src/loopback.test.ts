import { isLoopbackHost } from './loopback';

/** A host name as a WHATWG URL normalises it. */
const urlHostname = (host: string) => new URL(`http://${host}:7007/`).hostname;

describe('isLoopbackHost', () => {
  it('takes localhost in any case, 127.0.0.0/8 and ::1, in brackets or not', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      'LocalHost',
      '127.0.0.1',
      '127.0.0.0',
      '127.255.255.255',
      '127.10.200.3',
      '::1',
      '[::1]',
      '[LOCALHOST]',
    ])
      expect([host, isLoopbackHost(host)]).toEqual([host, true]);
  });

  it('takes the forms a URL normalises loopback into', () => {
    expect(urlHostname('127.1')).toBe('127.0.0.1');
    expect(urlHostname('[0:0::1]')).toBe('[::1]');
    expect(urlHostname('LOCALHOST')).toBe('localhost');
    for (const host of ['127.1', '[0:0::1]', 'LOCALHOST', '0x7f.1'])
      expect([host, isLoopbackHost(urlHostname(host))]).toEqual([host, true]);
  });

  it('refuses names resolvers may send to DNS, other addresses, and what is no dotted quad', () => {
    for (const host of [
      'foo.localhost',
      'localhost.',
      'localhost.localdomain',
      'localhost:7007',
      ' localhost',
      '128.0.0.1',
      '126.255.255.255',
      '10.0.0.1',
      '0.0.0.0',
      '1270.0.0.1',
      '127.0.0.256',
      '127.256.0.1',
      '127.0.0.01',
      '127.0.0',
      '127.0.0.1.1',
      '127.1',
      '127.0.0.1\n',
      '0:0::1',
      '::',
      '[::2]',
      '::ffff:127.0.0.1',
      '[::1',
      '',
    ])
      expect([host, isLoopbackHost(host)]).toEqual([host, false]);
    expect(isLoopbackHost(urlHostname('foo.localhost'))).toBe(false);
    expect(isLoopbackHost(urlHostname('localhost.'))).toBe(false);
    expect(isLoopbackHost(urlHostname('128.1'))).toBe(false);
  });
});
