// Each workspace package lints with its own .eslintrc.js (Backstage's config for its role);
// bench/, demo/ and test/ have theirs too. Nothing here is shared with them.
module.exports = {
  root: true,
};
