// What this repository adds to Backstage's lint config (@backstage/cli/config/eslint-factory);
// every .eslintrc.js passes it to the factory. Each exception says why it fits this repository.
module.exports = {
  rules: {
    // The tests run on vitest, not jest: jest's deprecated functions are not in it, and the rule
    // cannot load without jest installed.
    'jest/no-deprecated-functions': 'off',
    // vitest's expect takes a message as its second argument.
    'jest/valid-expect': ['error', { maxArgs: 2 }],
    // vitest's conditional tests are tests too.
    'jest/no-standalone-expect': [
      'error',
      { additionalTestBlockFunctions: ['it.runIf', 'it.skipIf'] },
    ],
    // Tests over each database, over generated sites and over either outcome of a race expect
    // what fits each case; every case asserts.
    'jest/no-conditional-expect': 'off',
    // Ternary chains, one case a line as prettier lays them out, are how this code picks a value.
    'no-nested-ternary': 'off',
    // Modules read top-down: a function may use constants and classes declared below it (it runs
    // once the module has loaded); a use before the declaration in one scope is still an error.
    '@typescript-eslint/no-use-before-define': [
      'error',
      { functions: false, classes: false, variables: false },
    ],
  },
  testRules: {
    // Tests are never published, and the repository is tested as one (one vitest, from source):
    // they use other packages' test helpers, and bench/'s and demo/'s site generators.
    '@backstage/no-relative-monorepo-imports': 'off',
    // Cases registered in loops (an it per generated site) and helpers in loops read what the
    // hooks set: written in another function, which the rule takes for a write in the loop.
    'no-loop-func': 'off',
  },
  overrides: [
    {
      // Test helpers, imported by tests alone: what the factory knows as __testUtils__.
      files: ['src/testing/**', 'src/testUtils/**'],
      rules: {
        '@backstage/no-relative-monorepo-imports': 'off',
        // It would have their imports of devDependencies declared as dependencies.
        '@backstage/no-undeclared-imports': 'off',
      },
    },
  ],
};
