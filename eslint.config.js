// One standard lint config (neostandard) for src and test.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', '.readme-run-*/**', 'coverage/**', '.tap/**', 'node_modules/**'] }),
  {
    // The TypeBox idiom: a schema constant and its Static<> type share one name.
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
