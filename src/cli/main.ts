// `sluice <command>`: the operator's entry point. Each command lives in its own module;
// this file only dispatches and turns errors into one clear line and a non-zero exit.
import { isSluiceError } from '../errors.js'
import { runApprovals, runGrants } from './approvals.js'
import { runAudit } from './audit.js'
import { runMigrate } from './migrate.js'
import { runPolicy } from './policy.js'
import { runStart } from './start.js'

const USAGE = `usage: sluice <command> [options]

commands:
  start      run the gateway (applies migrations first unless store.migrateOnStart is false)
  migrate    apply database migrations and exit
  policy test <cases.yaml>
             run policy cases (principal, connection, SQL → expected decision); non-zero on a mismatch
  policy explain --role R --connection C [--group G] [--machine] [--kind K] "SQL"
             print the analysis of SQL and the decision the policies give
  audit verify [--file export.jsonl | --checkpoints copies.jsonl] [--public-key key.pem] [--strict] [--json]
             re-link every hash chain (store or export file) and check signed checkpoints;
             lists modified, deleted, inserted and reordered events; non-zero when any
  audit export [--since T] [--until T] [--format jsonl|csv] [--out FILE]
             stream recorded events (JSON Lines are sealed and verifiable)
  audit retention
             run the retention job once
  approvals list [--status pending|approved|denied|expired|withdrawn|executed] [--connection C] [--requester P] [--json]
  approvals show <id> [--json]
  approvals approve <id> [--reason R] [--grant-minutes N]
  approvals deny <id> --reason R
             decide held statements through the gateway's admin API, as the approver whose OIDC
             token is given (--token, --token-file or SLUICE_TOKEN; --url or SLUICE_URL, default
             approvals.baseUrl or the configured listener)
  grants list [--active] [--connection C] [--json]
  grants revoke <id>
             scoped grants given with approvals

options:
  --config <file>   configuration file (default: $SLUICE_CONFIG or ./sluice.yaml)
  --policies <dir>  policies directory for the policy commands (default: policies.directory)
`

type Command = (args: string[]) => Promise<number>

const COMMANDS: Record<string, Command> = {
  start: runStart,
  migrate: runMigrate,
  policy: runPolicy,
  audit: runAudit,
  approvals: runApprovals,
  grants: runGrants
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE)
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`sluice: unknown command "${name}"\n\n${USAGE}`)
    return 2
  }
  try {
    return await command(args)
  } catch (err) {
    const message = isSluiceError(err) ? `${err.code}: ${err.message}` : (err as Error).stack ?? String(err)
    process.stderr.write(`sluice ${name}: ${message}\n`)
    return 1
  }
}
