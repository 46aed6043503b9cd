// The dashboard's shell: sign-in, navigation and a hash router (#/tasks/<id>), so the server serves one page.
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './styles.css'
import { api, ApiError, session, type Me } from './api.js'
import { Overview } from './pages/overview.js'
import { Tasks } from './pages/tasks.js'
import { TaskPage } from './pages/task.js'
import { Deliveries } from './pages/deliveries.js'
import { Submit } from './pages/submit.js'
import { parseHash, type Route } from './router.js'

function useRoute (): Route {
  const [route, setRoute] = useState(parseHash)
  useEffect(() => {
    const onChange = () => setRoute(parseHash())
    window.addEventListener('hashchange', onChange)
    return () => window.removeEventListener('hashchange', onChange)
  }, [])
  return route
}

function SignIn ({ onSignedIn, message }: { onSignedIn: (me: Me) => void, message: string | null }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(message)
  const [busy, setBusy] = useState(false)
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const me = await api<Me>('/v1/me', { token: token.trim() || null })
      session.set(token.trim())
      onSignedIn(me)
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'This token is not one the service knows.' : `Could not sign in: ${(err as Error).message}`)
    } finally {
      setBusy(false)
    }
  }
  return (
    <main id='main' class='signin'>
      <h1>s2v-callback</h1>
      <p>Sign in with an API token of this service. It is kept in this browser tab only, until you sign out or close it.
        On a service without tokens, leave it empty.
      </p>
      <form onSubmit={submit} class='card'>
        <label for='token'>API token</label>
        <input id='token' name='token' type='password' autocomplete='current-password' value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        {error && <p class='error' role='alert'>{error}</p>}
        <button type='submit' disabled={busy}>Sign in</button>
      </form>
    </main>
  )
}

const NAV = [
  { path: '', label: 'Overview' },
  { path: 'tasks', label: 'Tasks' },
  { path: 'deliveries', label: 'Deliveries' },
  { path: 'submit', label: 'Submit' }
]

function Page ({ route, me }: { route: Route, me: Me }) {
  const [first = '', second] = route.path
  if (first === 'tasks' && second) return <TaskPage id={second} me={me} />
  if (first === 'tasks') return <Tasks route={route} me={me} />
  if (first === 'deliveries') return <Deliveries route={route} me={me} />
  if (first === 'submit') return <Submit />
  if (first === '') return <Overview me={me} />
  return <section><h1>Not found</h1><p>No page at this address. <a href='#/'>Back to the overview</a>.</p></section>
}

function App () {
  const route = useRoute()
  const [me, setMe] = useState<Me | null>(null)
  const [checking, setChecking] = useState(true)
  const [message, setMessage] = useState<string | null>(null)

  useEffect(() => {
    // A token kept from earlier in this tab signs in without the form.
    if (session.token === null) setChecking(false)
    else api<Me>('/v1/me').then(setMe, () => { session.clear() }).finally(() => setChecking(false))
    const onUnauthorized = () => {
      session.clear()
      setMe(null)
      setMessage('The service no longer accepts this token; sign in again.')
    }
    window.addEventListener('s2v:unauthorized', onUnauthorized)
    return () => window.removeEventListener('s2v:unauthorized', onUnauthorized)
  }, [])

  useEffect(() => {
    const name = route.path[0] ?? ''
    const label = name === 'tasks' && route.path[1] ? `Task ${route.path[1].slice(0, 8)}` : NAV.find((item) => item.path === name)?.label ?? 'Dashboard'
    document.title = `${label} · s2v-callback`
  }, [route])

  if (checking) return <p class='loading' aria-live='polite'>Loading…</p>
  if (!me) return <SignIn onSignedIn={(value) => { setMessage(null); setMe(value) }} message={message} />

  const current = route.path[0] ?? ''
  const signOut = () => {
    session.clear()
    setMe(null)
    setMessage(null)
  }
  return (
    <>
      <a class='skip' href='#main' onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus() }}>Skip to content</a>
      <header class='top'>
        <a class='brand' href='#/'>s2v-callback</a>
        <nav aria-label='Main'>
          <ul>
            {NAV.map((item) => (
              <li key={item.path}><a href={`#/${item.path}`} aria-current={current === item.path ? 'page' : undefined}>{item.label}</a></li>
            ))}
          </ul>
        </nav>
        <div class='who'>
          <span title='Your caller name'>{me.caller}{me.admin ? ' · operator' : ''}</span>
          {!me.open && <button type='button' class='link' onClick={signOut}>Sign out</button>}
        </div>
      </header>
      <main id='main' tabIndex={-1}>
        <Page route={route} me={me} />
      </main>
    </>
  )
}

render(<App />, document.getElementById('app')!)
