import t from 'tap'
import { parseProviderJson, quoteBareChallenge, quoteBareIds } from '../../src/lib/json-ids.js'

t.test('bare-number ids keep every digit', async (t) => {
  const raw = '{"task_id":115334141465231361,"status":"success","file_id": 205258526306433123 ,"n":115334141465231361}'
  t.same(parseProviderJson(raw), { task_id: '115334141465231361', status: 'success', file_id: '205258526306433123', n: 115334141465231360 })
  t.equal((JSON.parse(raw) as { task_id: number }).task_id.toString(), '115334141465231360', 'plain JSON.parse would have lost a digit')
})

t.test('strings, nested ids and other numbers are left alone', async (t) => {
  t.equal(quoteBareIds('{"task_id":"123"}'), '{"task_id":"123"}')
  t.equal(quoteBareIds('{"a":{"task_id":12}}'), '{"a":{"task_id":"12"}}')
  t.equal(quoteBareIds('{"task_id":1.5}'), '{"task_id":1.5}', 'not an integer')
  t.equal(quoteBareIds('{"prompt":"\\"task_id\\": 5"}'), '{"prompt":"\\"task_id\\": 5"}', 'text inside a string value')
})

t.test('a bare-number challenge is quoted and its literal kept; anything ambiguous is left alone', async (t) => {
  t.same(quoteBareChallenge('{"challenge": 12345678901234567890}'), { json: '{"challenge": "12345678901234567890"}', literal: '12345678901234567890' })
  t.same(quoteBareChallenge('{"challenge":-1.5e-3,"x":1}'), { json: '{"challenge":"-1.5e-3","x":1}', literal: '-1.5e-3' })
  t.same(quoteBareChallenge('{"challenge":"123"}'), { json: '{"challenge":"123"}', literal: null }, 'a string stays as it is')
  t.same(quoteBareChallenge('{"a":{"challenge":1},"challenge":2}'), { json: '{"a":{"challenge":1},"challenge":2}', literal: null }, 'two challenge keys: not guessed')
  t.same(quoteBareChallenge('{"challenge":01}').literal, null, 'not a JSON number')
  t.same(quoteBareChallenge('{"prompt":"\\"challenge\\": 5"}').literal, null, 'text inside a string value')
})
