// The BigQuery v2 discovery document, served with Sluice's own base URL so clients that build
// their calls from it (the bq CLI fetches `/$discovery/rest?version=v2` first) call Sluice and
// nothing else. discovery.json is Google's document as the bq CLI ships it; only the URLs that
// point at Google are rewritten, and the regional endpoints are dropped.
import document from './discovery.json' with { type: 'json' }

const cache = new Map<string, string>()

/** The document as JSON text for a gateway reachable at `baseUrl` (e.g. https://sluice.corp). */
export function discoveryDocument (baseUrl: string): string {
  const root = `${baseUrl.replace(/\/+$/, '')}/`
  let text = cache.get(root)
  if (text === undefined) {
    text = JSON.stringify({
      ...document,
      rootUrl: root,
      mtlsRootUrl: root,
      baseUrl: `${root}${document.servicePath}`,
      endpoints: []
    })
    // A Host header is the client's to choose; bound the cache so it cannot be grown at will.
    if (cache.size > 32) cache.clear()
    cache.set(root, text)
  }
  return text
}
