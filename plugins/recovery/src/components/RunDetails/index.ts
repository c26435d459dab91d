export { RunDetails } from './RunDetails';
export { RunLink } from './RunLink';
