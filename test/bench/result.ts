/** What a benchmark reports: a name and human-readable lines (numbers with their units). */
export interface BenchResult {
  name: string
  lines: string[]
}
