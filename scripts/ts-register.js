// Lets Node load the TypeScript sources directly (`node -r ./scripts/ts-register.js src/main.ts`), compiling each
// file on require with @swc/core. Used by benchmarks and by tests that spawn the real process, so they always run
// the current sources without a build step. Production runs the tsc build in dist/.
const fs = require('node:fs');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = function compileTs(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};
