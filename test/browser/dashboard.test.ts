// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real service and the fake
// MiniMax: sign in, submit, live status, the video playing, deliveries replayed, per-caller visibility, no console errors.
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { getJson, postJson, startStack, submitBody } from '../helper.js'
import { startWebhookConsumer } from '../fixtures/webhook-consumer.js'

// Debian's package (apt-get install chromium): no browser is downloaded. .ci/run installs it and sets REQUIRE_BROWSER.
const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOTS = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url))
const SUBJECT_PNG = fileURLToPath(new URL('../fixtures/subject.png', import.meta.url))
// Long enough to see "processing" in the page before the success push, short enough for a quick test.
const PUSH_DELAY_MS = 1500
const WAIT_MS = 60_000 // a status change or a page load, with room for a 2-core machine shared by a whole team's test runs
const DESKTOP = { width: 1280, height: 860 }
const PHONE = { width: 390, height: 844 }

const ADMIN = 'ops-token'
const ALICE = 'alice-token'
const BOB = 'bob-token'

if (!existsSync(CHROMIUM)) {
  const message = `browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`
  if (process.env.REQUIRE_BROWSER === '1') t.fail(`${message}, and REQUIRE_BROWSER=1 requires them`)
  else t.test('the dashboard in a browser', { skip: message }, () => {})
} else {
  await run()
}

type Watched = { page: Page, errors: string[] }

// The browser's globals, inside page.evaluate callbacks only (the test program is compiled without the DOM library).
declare const document: any
declare const window: any

async function run () {
  mkdirSync(SCREENSHOTS, { recursive: true })
  t.comment(`screenshots: ${SCREENSHOTS}`)
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const env: Record<string, string> = {
    RECONCILE_TICK_MS: '100',
    // Every finished task's link is fetched from the budget; the default 10/min runs out in this test's burst of tasks,
    // and the player's signed link then answers 502 video_link_unavailable (correct, but not what this test looks at).
    MINIMAX_POLL_BUDGET: '1000',
    NOTIFY_ALLOW_PRIVATE: 'true',
    NOTIFY_RETRY_SCHEDULE: '0.05', // two attempts, 50 ms apart, then dead: a dead delivery within a second
    API_TOKENS: `alice:${ALICE},bob:${BOB}`,
    ADMIN_TOKENS: `ops:${ADMIN}`
  }
  const stack = await startStack(t, { env, behaviour: { pushDelayMs: PUSH_DELAY_MS } })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] })
  t.teardown(() => browser.close())

  const ui = `${stack.url}/ui/`
  // A reference image on loopback (the fake serves one), so the task pages can show it.
  const image = `${stack.fake.url}/assets/subject.png`
  const body = (extra: Record<string, unknown>) => submitBody({ subject_reference: [{ type: 'character', image: [image] }], ...extra })
  const open = async (t: Test, token: string | null, viewport = DESKTOP): Promise<Watched> => {
    const context = await browser.newContext({ viewport })
    t.teardown(() => context.close())
    await loopbackOnly(context)
    const page = await context.newPage()
    const errors: string[] = []
    page.on('console', (message) => { if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`) })
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`))
    await page.goto(ui)
    if (token !== null) await signIn(page, token)
    return { page, errors }
  }
  const shot = async (page: Page, name: string) => {
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
  }

  t.test('the page is served with a strict CSP and cached assets, and sign-in works from the keyboard', async (t) => {
    const response = await fetch(ui)
    t.equal(response.status, 200)
    const csp = response.headers.get('content-security-policy') ?? ''
    t.match(csp, /script-src 'self'(;|$)/, 'scripts only from the service')
    t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'no inline code')
    t.equal(response.headers.get('cache-control'), 'no-cache', 'the page is revalidated')
    const script = /src="(assets\/main-[^"]+\.js)"/.exec(await response.text())?.[1]
    t.ok(script, 'the page loads a hashed script')
    const asset = await fetch(`${ui}${script}`)
    t.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable', 'hashed assets are cached for a year')

    const { page, errors } = await open(t, null)
    await page.waitForSelector('#token')
    await shot(page, '01-sign-in')
    // Keyboard only: Tab to the token field, type, Enter.
    for (let i = 0; i < 5 && !(await page.evaluate(() => document.activeElement?.id === 'token')); i++) await page.keyboard.press('Tab')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'the token field is reachable with Tab')
    await page.keyboard.type(ADMIN)
    await page.keyboard.press('Enter')
    await page.waitForSelector('h1:text("Overview")', { timeout: WAIT_MS })
    t.equal(await page.evaluate(() => document.cookie), '', 'no cookie holds the token')
    t.notMatch(page.url(), ADMIN, 'the token is not in the URL')
    t.same(errors, [], 'no console errors')
  })

  t.test('a task submitted from the page goes processing → success live, and its video plays', async (t) => {
    const { page, errors } = await open(t, ADMIN)
    await page.click('nav >> text=Submit')
    await page.setInputFiles('#image_file', SUBJECT_PNG)
    await page.waitForSelector('img.preview')
    await page.fill('#prompt', 'A girl waves at the camera')
    await page.fill('#metadata', '{"ticket": "T-42"}')
    await shot(page, '02-submit')
    await page.evaluate(() => { window.marker = 42 })
    await page.click('button[type=submit]')
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/, { timeout: WAIT_MS })
    const id = page.url().split('/').at(-1)!
    await page.waitForSelector('[data-testid=task-status] .badge.processing', { timeout: WAIT_MS })
    t.pass('the page shows processing')
    await page.waitForSelector('[data-testid=task-status] .badge.success', { timeout: WAIT_MS })
    t.equal(await page.evaluate(() => window.marker), 42, 'success arrived without a reload')

    await page.waitForSelector('video', { timeout: WAIT_MS })
    const video = await page.evaluate(async () => {
      const element = document.querySelector('video')!
      element.muted = true
      if (element.readyState < 2) await new Promise((resolve, reject) => { element.addEventListener('loadeddata', resolve, { once: true }); element.addEventListener('error', () => reject(new Error(`media error ${element.error?.code}`)), { once: true }) })
      await element.play()
      await new Promise((resolve) => setTimeout(resolve, 300))
      return { readyState: element.readyState, currentTime: element.currentTime, width: element.videoWidth, height: element.videoHeight, src: element.currentSrc }
    })
    t.ok(video.readyState >= 2, `the video loaded (readyState ${video.readyState})`)
    t.ok(video.currentTime > 0, `and plays (at ${video.currentTime} s)`)
    t.same([video.width, video.height], [128, 72], 'it is the fixture MP4')
    await page.evaluate(() => { const v = document.querySelector('video')!; v.pause(); v.currentTime = 0.5 })

    const timeline = await page.$$eval('.timeline li', (items) => items.map((item: any) => item.textContent ?? ''))
    t.ok(timeline.length >= 3, `the timeline shows ${timeline.length} events`)
    t.ok(timeline.some((text) => text.includes('callback') && text.includes('success')), 'with the success push')
    t.match(await page.textContent('.json'), /"ticket": "T-42"/, 'the metadata')
    t.match(await page.textContent('.prompt'), 'A girl waves at the camera', 'the prompt')
    t.match(await page.inputValue('.curl input'), `/v1/tasks/${id}`, 'a curl of the lookup to copy')
    await shot(page, '03-task-success')

    await page.click('text=Refresh now')
    await page.waitForSelector('.notice:text("Refresh: done.")', { timeout: WAIT_MS })
    t.same(errors, [], 'no console errors')
  })

  t.test('the tasks table updates rows live, searches metadata and pages with a cursor', async (t) => {
    const { page, errors } = await open(t, ADMIN)
    await page.click('nav >> text=Tasks')
    await page.waitForSelector('.live.on', { timeout: WAIT_MS })
    await page.evaluate(() => { window.marker = 7 })
    const submitted = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'live row', metadata: { ticket: 'T-43' } }), { authorization: `Bearer ${ADMIN}` })
    t.equal(submitted.status, 200)
    const row = `tr[data-task="${submitted.body.id as string}"]`
    await page.waitForSelector(`${row}[data-status=processing]`, { timeout: WAIT_MS })
    await page.waitForSelector(`${row}[data-status=success]`, { timeout: WAIT_MS })
    t.equal(await page.evaluate(() => window.marker), 7, 'the new row went processing → success without a reload')
    await shot(page, '04-tasks')

    await page.fill('#f-q', 'T-42')
    await page.press('#f-q', 'Enter')
    await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-task]').length === 1, undefined, { timeout: WAIT_MS })
    t.match(await page.textContent('tbody'), 'A girl waves', 'a metadata value finds its task')

    // A task that stays processing (no final push) until the test pushes its success, by then on the second page.
    stack.fake.set({ pushes: 'half' })
    const old = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'an old task' }), { authorization: `Bearer ${ADMIN}` })
    stack.fake.set({ pushes: 'normal' })
    for (let i = 0; i < 21; i++) await postJson(`${stack.url}/v1/video_generation`, body({ prompt: `page filler ${i}` }), { authorization: `Bearer ${ADMIN}` })
    await page.goto(`${ui}#/tasks`)
    await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-task]').length === 20, undefined, { timeout: WAIT_MS })
    await page.waitForSelector('.live.on', { timeout: WAIT_MS })

    const oldTask = await getJson(`${stack.url}/v1/tasks/${old.body.id as string}`, { authorization: `Bearer ${ADMIN}` })
    t.equal(oldTask.body.status, 'processing', 'the old task is still processing')
    // MiniMax's own push as the fake would have sent it, once the fake has finished the task (its video exists).
    const done = await until(async () => { const task = stack.fake.tasks.get(old.body.task_id as string); return task?.status === 'Success' ? task : undefined })
    const pushed = await postJson(done.callback_url!, { task_id: done.task_id, status: 'success', file_id: done.file_id, base_resp: { status_code: 0, status_msg: 'success' } })
    t.equal(pushed.status, 200, 'its success push is taken')
    // The feed delivers in order: once a task submitted after the push has its row, the push's event has been seen.
    const later = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'after the old task' }), { authorization: `Bearer ${ADMIN}` })
    await page.waitForSelector(`tr[data-task="${later.body.id as string}"]`, { timeout: WAIT_MS })
    const rows = await page.$$eval('tbody tr[data-task]', (items) => items.map((item: any) => item.getAttribute('data-task')))
    t.equal(rows[0], later.body.id, 'a new task joins the first page at the top')
    t.notOk(rows.includes(old.body.id), 'an old task that changes stays on its own page, not at the top of the first')
    t.equal(rows.length, 20, 'the first page still holds 20 rows')
    const first = rows[0]
    await page.click('text=Older →')
    await page.waitForFunction((id) => document.querySelector('tbody tr[data-task]')?.getAttribute('data-task') !== id, first, { timeout: WAIT_MS })
    t.ok((await page.$$('tbody tr[data-task]')).length >= 3, 'the next page has the older tasks')
    await page.click('text=← Newer')
    await page.waitForFunction((id) => document.querySelector('tbody tr[data-task]')?.getAttribute('data-task') === id, first, { timeout: WAIT_MS })
    t.pass('and Newer goes back')
    t.same(errors, [], 'no console errors')
  })

  t.test('a failed task shows MiniMax\'s code and what it means', async (t) => {
    stack.fake.set({ finalStatus: 'failed', failureCode: 1027, pushDelayMs: 20 })
    t.teardown(() => stack.fake.set({ finalStatus: 'success', pushDelayMs: PUSH_DELAY_MS }))
    const submitted = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'a forbidden scene' }), { authorization: `Bearer ${ADMIN}` })
    const { page, errors } = await open(t, ADMIN)
    await page.goto(`${ui}#/tasks/${submitted.body.id as string}`)
    await page.waitForSelector('.error-card', { timeout: WAIT_MS })
    const text = await page.textContent('.error-card') ?? ''
    t.match(text, '1027', 'the code')
    t.match(text, /Sensitive content detected in the generated video/, 'what it means')
    await shot(page, '05-task-failed')
    t.same(errors, [], 'no console errors')
  })

  t.test('an admin replays a dead delivery', async (t) => {
    consumer.fallback = { status: 500 }
    const submitted = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'notify me', notify_url: consumer.url }), { authorization: `Bearer ${ADMIN}` })
    const id = submitted.body.id as string
    // The success message is the one to replay: replaying the processing one after a delivered success is refused
    // (delivery_superseded), by design.
    const dead = await until(async () => {
      const page = await getJson(`${stack.url}/v1/deliveries?state=failed&task=${id}`, { authorization: `Bearer ${ADMIN}` })
      return (page.body.items as Array<{ id: string, status: string }>).find((delivery) => delivery.status === 'success')
    })
    consumer.fallback = { status: 204 }
    const { page, errors } = await open(t, ADMIN)
    await page.click('nav >> text=Deliveries')
    await page.selectOption('#d-state', 'failed')
    const item = `li[data-delivery="${dead.id}"]`
    await page.waitForSelector(item, { timeout: WAIT_MS })
    await page.click(`${item} summary`)
    await shot(page, '06-deliveries-dead')
    await page.click(`${item} button:text("Replay")`)
    await page.waitForSelector('.notice:text("1 of 1 replayed.")', { timeout: WAIT_MS })
    const delivered = await until(async () => {
      const one = await getJson(`${stack.url}/v1/deliveries/${dead.id}`, { authorization: `Bearer ${ADMIN}` })
      return one.body.state === 'delivered' ? one.body : undefined
    })
    t.equal(delivered.state, 'delivered', 'the replay was delivered')
    await page.goto(`${ui}#/tasks/${id}`)
    await page.waitForSelector(`li[data-delivery="${dead.id}"] .badge.delivered`, { timeout: WAIT_MS })
    t.pass('the task page lists its deliveries')
    await shot(page, '07-task-deliveries')
    t.same(errors, [], 'no console errors')
  })

  t.test('a caller cannot see another caller\'s task', async (t) => {
    const alices = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'alice only' }), { authorization: `Bearer ${ALICE}` })
    const { page, errors } = await open(t, BOB)
    await page.click('nav >> text=Tasks')
    await page.waitForSelector('table.tasks', { timeout: WAIT_MS })
    await page.waitForSelector('.live.on', { timeout: WAIT_MS })
    t.equal(await page.$(`tr[data-task="${alices.body.id as string}"]`), null, 'not in bob\'s table')
    t.equal(await page.$('th:text("Caller")'), null, 'no caller column or filter for a caller who sees only its own')
    const bobs = await postJson(`${stack.url}/v1/video_generation`, body({ prompt: 'bob only' }), { authorization: `Bearer ${BOB}` })
    await page.waitForSelector(`tr[data-task="${bobs.body.id as string}"]`, { timeout: WAIT_MS })
    await until(async () => { // alice's task changes status meanwhile: the same feed carried it, filtered
      const alice = await getJson(`${stack.url}/v1/tasks/${alices.body.id as string}`, { authorization: `Bearer ${ALICE}` })
      return alice.body.status === 'success' ? true : undefined
    })
    t.equal(await page.$(`tr[data-task="${alices.body.id as string}"]`), null, 'the live feed never shows alice\'s task to bob')
    await page.click('nav >> text=Overview')
    await page.waitForSelector('main h1:text("Overview")', { timeout: WAIT_MS })
    // The heading comes first; the numbers (and who they count) once /v1/stats answered.
    await page.waitForFunction(() => document.querySelector('main')?.textContent?.includes('Tasks of'), null, { timeout: WAIT_MS })
    t.match(await page.textContent('main'), 'Tasks of bob', 'the overview counts bob\'s tasks only')
    await shot(page, '10-caller-bob-overview')
    errors.length = 0
    await page.goto(`${ui}#/tasks/${alices.body.id as string}`)
    await page.waitForSelector('.error[role=alert]', { timeout: WAIT_MS })
    t.match(await page.textContent('.error[role=alert]'), /not found/)
    // The 404 itself is the one console line expected here (Chromium logs every failed fetch).
    t.same(errors.filter((line) => !/status of 404/.test(line)), [], 'no other console errors')
  })

  t.test('overview, and every page at phone width', async (t) => {
    const { page, errors } = await open(t, ADMIN)
    await page.waitForSelector('.chart svg rect', { timeout: WAIT_MS })
    t.ok((await page.$$('.chart svg rect')).length >= 1, 'the chart has bars')
    t.match(await page.textContent('main'), /success rate/)
    await shot(page, '08-overview')
    const phone = await open(t, ADMIN, PHONE)
    const newest = (await getJson(`${stack.url}/v1/tasks?status=success&limit=1`, { authorization: `Bearer ${ADMIN}` })).body.items[0].id as string
    for (const [hash, name] of [['#/', 'overview'], ['#/tasks', 'tasks'], [`#/tasks/${newest}`, 'task'], ['#/submit', 'submit'], ['#/deliveries', 'deliveries']] as const) {
      await phone.page.goto(`${ui}${hash}`)
      await phone.page.waitForSelector('main h1', { timeout: WAIT_MS })
      await phone.page.waitForLoadState('networkidle').catch(() => {})
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      t.ok(overflow <= 1, `${name}: nothing wider than the phone (${overflow} px over)`)
      await shot(phone.page, `09-phone-${name}`)
    }
    t.same([...errors, ...phone.errors], [], 'no console errors')
  })
}

/** Every request the page makes stays on loopback: a test never reaches the internet. */
async function loopbackOnly (context: BrowserContext) {
  await context.route('**/*', async (route) => {
    const { protocol, hostname } = new URL(route.request().url())
    if (protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1') await route.continue()
    else await route.abort('blockedbyclient')
  })
}

async function signIn (page: Page, token: string) {
  await page.fill('#token', token)
  await page.click('button[type=submit]')
  await page.waitForSelector('main h1:text("Overview")', { timeout: WAIT_MS })
}

async function until<T> (probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
