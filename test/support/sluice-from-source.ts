// `sluice <command>` from the TypeScript sources (node --import tsx …): what the replica harness
// and the benchmark run as child processes, so neither needs a build of dist/ first.
import { main } from '../../src/cli/main.js'

process.exit(await main(process.argv.slice(2)))
