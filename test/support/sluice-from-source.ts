// `sluice <command>` from the TypeScript sources (node --import tsx …): what the replica harness
// runs as child processes for the tests, so they need no build of dist/ first. The benchmark
// runs the compiled CLI instead (replicas.ts `compiled`), as a deployment does.
import { main } from '../../src/cli/main.js'

process.exit(await main(process.argv.slice(2)))
