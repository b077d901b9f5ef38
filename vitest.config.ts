import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers (OIDC provider, Postgres databases, emulators);
    // two cores do not gain from more parallel forks than this.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // The JSON report lets CI print one plain "N passed, N failed" line for the whole run.
    reporters: ['default', 'json'],
    outputFile: { json: '.sluice/test-results.json' },
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
