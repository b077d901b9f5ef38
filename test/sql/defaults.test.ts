import { describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { lineageOf } from '../../src/sql/lineage.js'

describe('connection defaults', () => {
  it('qualify bare names the same way as a fully written unquoted name, whatever case the config uses', async () => {
    const analyzer = await createSqlAnalyzer()
    const bare = analyzer.analyze('SELECT * FROM orders', 'snowflake', { database: 'ANALYTICS', schema: 'PUBLIC' })
    const written = analyzer.analyze('SELECT * FROM ANALYTICS.PUBLIC.ORDERS', 'snowflake', { database: 'ANALYTICS', schema: 'PUBLIC' })
    expect(bare.statements[0]?.tablesRead).toEqual(['analytics.public.orders'])
    expect(written.statements[0]?.tablesRead).toEqual(['analytics.public.orders'])
  })
})

describe('connection defaults in lineage', () => {
  it('qualify source columns in lower case too', async () => {
    await createSqlAnalyzer() // loads the parser
    const [lineage] = lineageOf('SELECT email FROM customers', { dialect: 'snowflake', defaults: { database: 'CRM', schema: 'PUBLIC' } })
    expect(lineage?.outputs[0]).toMatchObject({ sources: ['crm.public.customers.email'] })
  })
})
