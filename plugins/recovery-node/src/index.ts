/**
 * Extension points and interfaces for recovery modules, and the pure dependency-analysis
 * engine shared by the backend and the CLI.
 *
 * @packageDocumentation
 */
export * from './providers';
export * from './extensions';
export * from './subnets';
export * from './timers';
export * from './schedules';
export * from './messageOf';
export * from './plan';

export * from './analysis';
export * from './events';
