export * from './recoveryGraph';
export * from './bootPlan';
export * from './learnedWords';
