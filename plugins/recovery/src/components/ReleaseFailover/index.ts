export { ReleaseFailover } from './ReleaseFailover';
