// Which result format each connector client is served, by Snowflake's rules: Arrow for the
// drivers that read it, JSON for snowflake-sdk and unknown clients, and the format parameters
// (statement over session, the driver's own before QUERY_RESULT_FORMAT) honoured. End to end
// with the real Python clients in python-arrow.test.ts and snowpark-mcp.test.ts.
import { describe, expect, it } from 'vitest'
import { statementParameters } from '../../src/warehouses/snowflake/parameters.js'
import { clientFormats, resultFormat } from '../../src/warehouses/snowflake/result-format.js'

describe('which format a client is served', () => {
  const python = clientFormats('PythonConnector', 'PythonConnector/5.2.0 (Linux) CPython/3.11.7', undefined)

  it('serves Arrow to the drivers that read it and JSON to snowflake-sdk and unknown clients', () => {
    expect(resultFormat(python)).toBe('arrow')
    expect(resultFormat(clientFormats('PythonSnowpark', 'PythonConnector/3.13.2', undefined))).toBe('arrow')
    // An application that renames itself still speaks through the Python connector.
    expect(resultFormat(clientFormats('my-agent-tool', 'PythonConnector/3.13.2 (Linux)', undefined))).toBe('arrow')
    for (const app of ['JDBC', 'ODBC', 'Go']) expect(resultFormat(clientFormats(app, undefined, undefined))).toBe('arrow')
    expect(resultFormat(clientFormats('JavaScript', 'snowflake-sdk', undefined))).toBe('json')
    expect(resultFormat(clientFormats('.NET', undefined, undefined))).toBe('json')
    expect(resultFormat(clientFormats('something', 'curl/8', undefined))).toBe('json')
    expect(resultFormat(undefined)).toBe('json')
  })

  it('honours the format parameters: statement over session, the driver\'s own over QUERY_RESULT_FORMAT', () => {
    // What the Python connector sends when installed without its Arrow extension.
    expect(resultFormat(python, statementParameters({ PYTHON_CONNECTOR_QUERY_RESULT_FORMAT: 'JSON' }).formats)).toBe('json')
    expect(resultFormat(python, statementParameters({ query_result_format: 'json' }).formats)).toBe('json')
    expect(resultFormat(python, statementParameters({ QUERY_RESULT_FORMAT: 'JSON', PYTHON_CONNECTOR_QUERY_RESULT_FORMAT: 'ARROW' }).formats)).toBe('arrow')
    const jsonSession = clientFormats('PythonConnector', undefined, { PYTHON_CONNECTOR_QUERY_RESULT_FORMAT: 'json', TIMEZONE: 'UTC' })
    expect(resultFormat(jsonSession)).toBe('json')
    expect(resultFormat(jsonSession, { QUERY_RESULT_FORMAT: 'arrow' })).toBe('arrow')
    // JDBC's parameter means nothing to the Python connector.
    expect(resultFormat(python, { JDBC_QUERY_RESULT_FORMAT: 'json' })).toBe('arrow')
    expect(resultFormat(clientFormats('.NET', undefined, { DOTNET_QUERY_RESULT_FORMAT: 'ARROW' }))).toBe('arrow')
    expect(resultFormat(clientFormats('libsnowflakeclient', undefined, undefined), statementParameters({ C_API_QUERY_RESULT_FORMAT: 'ARROW_FORCE' }).formats)).toBe('arrow')
    // snowflake-sdk has no Arrow reader, whatever it asks for.
    expect(resultFormat(clientFormats('JavaScript', undefined, { QUERY_RESULT_FORMAT: 'ARROW' }))).toBe('json')
  })

  it('keeps the format parameters and Snowpark\'s plan tag for Sluice: nothing of them goes upstream', () => {
    const checked = statementParameters({ PYTHON_CONNECTOR_QUERY_RESULT_FORMAT: 'JSON', _PLAN_UUID: '0c4b1f6e-8e0a-4f57-9d51-7f3b8c2a9e11', QUERY_TAG: 't' })
    expect(checked.forwarded).toEqual({ QUERY_TAG: 't' })
    expect(checked.formats).toEqual({ PYTHON_CONNECTOR_QUERY_RESULT_FORMAT: 'json' })
    expect(() => statementParameters({ JDBC_QUERY_RESULT_FORMAT: 'XML' })).toThrow(/must be one of JSON, ARROW, ARROW_FORCE/)
  })
})
