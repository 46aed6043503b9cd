import t from 'tap'
import { parseProviderJson, quoteBareIds } from '../../src/lib/json-ids.js'

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
