// The overview's arithmetic: nearest-rank percentiles and histogram_quantile over cumulative buckets.
import t from 'tap'
import { bucketQuantile, percentile } from '../../src/services/stats.js'

t.test('nearest-rank percentile', async (t) => {
  t.equal(percentile([], 0.5), null)
  t.equal(percentile([7], 0.95), 7)
  t.equal(percentile([1, 2, 3, 4], 0.5), 2)
  t.equal(percentile([1, 2, 3, 4], 0.95), 4)
  t.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 0.95), 95)
})

t.test('histogram quantiles interpolate inside the bucket that holds the rank, as Prometheus does', async (t) => {
  t.equal(bucketQuantile([], 0.5), null)
  t.equal(bucketQuantile([{ le: 1, count: 0 }, { le: Infinity, count: 0 }], 0.5), null)
  const buckets = [{ le: 0.001, count: 50 }, { le: 0.01, count: 90 }, { le: 0.1, count: 100 }, { le: Infinity, count: 100 }]
  t.equal(bucketQuantile(buckets, 0.5), 0.001, 'the 50th of 100 is the top of the first bucket')
  t.ok(Math.abs(bucketQuantile(buckets, 0.7)! - 0.0055) < 1e-9, 'the 70th: halfway through the second bucket')
  t.ok(Math.abs(bucketQuantile(buckets, 0.95)! - 0.055) < 1e-9)
  t.equal(bucketQuantile([{ le: 1, count: 1 }, { le: Infinity, count: 10 }], 0.95), 1, 'beyond the last finite bucket: its bound')
})
