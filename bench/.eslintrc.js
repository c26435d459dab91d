const { createConfigForRole } = require('@backstage/cli/config/eslint-factory');

// Node programs and their tests, outside any package: linted as a cli package is.
module.exports = createConfigForRole(
  __dirname,
  'cli',
  require('../eslint.shared'),
);
