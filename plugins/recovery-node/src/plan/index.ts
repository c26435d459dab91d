export * from './recoveryGraph';
export * from './bootPlan';
