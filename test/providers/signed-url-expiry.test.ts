// Tests of reading a signed URL's expiry from its query parameters.
import t from 'tap'
import { signedUrlExpiry } from '../../src/providers/signed-url-expiry.js'

const NOW = Date.UTC(2030, 0, 1)

t.test('Expires is an absolute Unix time in seconds, whatever its case', async (t) => {
  t.equal(signedUrlExpiry('https://cdn.example/v.mp4?Expires=1893456000&sig=x', NOW), 1893456000 * 1000)
  t.equal(signedUrlExpiry('https://cdn.example/v.mp4?expires=1893456000', NOW), 1893456000 * 1000)
})

t.test('v4-style expiries count from their signing date, or from now without one', async (t) => {
  t.equal(signedUrlExpiry('https://s3.example/v.mp4?X-Amz-Date=20300101T000000Z&X-Amz-Expires=600', NOW + 1), NOW + 600_000)
  t.equal(signedUrlExpiry('https://gcs.example/v.mp4?X-Goog-Date=20300101T000000Z&X-Goog-Expires=60', 0), NOW + 60_000)
  t.equal(signedUrlExpiry('https://oss.example/v.mp4?x-oss-date=20300101T000000Z&x-oss-expires=3600', 0), NOW + 3_600_000)
  t.equal(signedUrlExpiry('https://s3.example/v.mp4?X-Amz-Expires=600', NOW), NOW + 600_000)
})

t.test('Azure\'s se is an ISO time', async (t) => {
  t.equal(signedUrlExpiry('https://blob.example/v.mp4?se=2030-01-01T02%3A00%3A00Z&sig=x', 0), NOW + 2 * 3_600_000)
})

t.test('no usable parameter gives null', async (t) => {
  for (const url of [
    'https://cdn.example/v.mp4',
    'https://cdn.example/v.mp4?Expires=soon',
    'https://cdn.example/v.mp4?Expires=3600', // a duration of unknown origin, not a time
    'https://cdn.example/v.mp4?X-Amz-Expires=-5',
    'https://cdn.example/v.mp4?se=never',
    'not a url'
  ]) t.equal(signedUrlExpiry(url, NOW), null, url)
})
