#!/usr/bin/env node
// Runs the compiled CLI (`npm run build`, done by `npm install` through the prepare script).
// Exits explicitly: after a drain timeout, lingering sockets must not keep the process alive.
import { main } from '../dist/src/cli/main.js'

process.exit(await main(process.argv.slice(2)))
