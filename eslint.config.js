// ESLint flat config: type-aware TypeScript rules plus import boundaries that keep the layering of
// ../shared/reference/architecture.md honest (pure core, thin edges, one wiring layer).
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const importPlugin = require('eslint-plugin-import');

/** `target` may not import from `from` (except the listed paths). */
const zone = (target, from, except, message) => ({ target, from, ...(except ? { except } : {}), message });

const boundaries = [
  // domain and lib are the leaves: they import nothing of ours (lib may use domain errors).
  zone('./src/domain', './src', ['./domain'], 'src/domain imports nothing of the project'),
  zone('./src/lib', './src', ['./lib', './domain'], 'src/lib imports only domain'),
  // Pure core: verifiers, policy, CA profile and the audit chain take everything as parameters.
  zone('./src/attestation', './src', ['./attestation', './tpm', './domain', './lib'], 'attestation verifiers are pure: no store, http, config or services'),
  zone('./src/tpm', './src', ['./tpm', './domain', './lib'], 'TPM structures are pure'),
  zone('./src/policy', './src', ['./policy', './domain', './lib', './config/sections'], 'the decision function is pure'),
  zone('./src/ca', './src', ['./ca', './domain', './lib', './config/sections'], 'the CA module does not touch the store or HTTP'),
  zone('./src/audit', './src', ['./audit', './domain', './lib', './store/types.ts', './store/errors.ts', './config/sections'], 'the audit core sees only store interfaces'),
  zone('./src/concentrator', './src', ['./concentrator', './policy', './domain', './lib'], 'concentrator request handling is pure'),
  // Store back-ends are reached only through src/store/index.ts.
  zone('./src/services', ['./src/store/sqlite', './src/store/redis', './src/http', './src/cli'], null, 'services use store interfaces, never a back-end or an edge'),
  zone('./src/http', ['./src/store/sqlite', './src/store/redis', './src/ca', './src/attestation', './src/tpm', './src/cli'], null, 'HTTP routes call services, not back-ends or core modules'),
  zone('./src/auth', ['./src/store/sqlite', './src/store/redis', './src/http', './src/cli'], null, 'auth uses store interfaces only'),
  zone('./src/store', ['./src/http', './src/services', './src/cli', './src/ca', './src/attestation', './src/audit'], null, 'the store knows nothing above it'),
  zone('./src', './test', null, 'production code never imports tests'),
];

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-artifacts/**', 'bench/out/**', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: __dirname },
    },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      'import/no-restricted-paths': ['error', { zones: boundaries }],
      'import/no-default-export': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/only-throw-error': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      'no-console': 'off',
    },
  },
);
