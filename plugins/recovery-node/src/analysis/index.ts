export * from './kernel';
export * from './mapping';
export * from './graph';
export * from './analyze';
