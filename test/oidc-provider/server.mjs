// A real OpenID Provider for zdgate's end-to-end tests: panva's oidc-provider (8.x, OpenID
// certified) with one confidential client, an in-memory account table, and a test-only admin API.
// Started by internal/nodeidp; see that package for the Go side.
//
//   OP_PORT                      port on 127.0.0.1 (0 or unset = pick a free one)
//   OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI      the client (required; redirect URIs may be
//                                space-separated)
//   OP_POST_LOGOUT_REDIRECT_URI  optional, space-separated
//   OP_BACKCHANNEL_LOGOUT_URI    optional; back-channel logout with sid (session required)
//   OP_ADMIN_TOKEN               bearer token of the /__admin API (required)
//   OP_CONFORM_ID_TOKEN_CLAIMS   "true": ID tokens carry only protocol claims (sub, sid, nonce, ...)
//                                and profile/email/groups come only from userinfo, as OIDC Core 5.4
//                                says; default: ID tokens carry them too, as most IdPs do
//
// When listening it prints one line of JSON to stdout, {"issuer": ..., "admin": ...}; everything
// else goes to stderr. It exits when stdin closes, so it never outlives the Go test that started it.
//
// Deliberate differences from the oidc-provider defaults, all for the tests' sake:
//   - own login page instead of devInteractions: devInteractions accepts any login name and ignores
//     the password; this one checks both against the account table (form fields `login` and
//     `password`, as in devInteractions); consent is granted without a page (first-party client);
//   - refresh tokens are issued whenever the client may use the refresh_token grant: the provider
//     drops `offline_access` from a request that lacks prompt=consent, so otherwise a plain
//     "openid email profile offline_access" login would get none;
//   - refresh tokens rotate on every use; presenting a used one answers invalid_grant AND revokes
//     the whole grant (the rotated successor dies too) - oidc-provider's reuse detection;
//   - cookies are SameSite=Lax (the default SameSite=None needs Secure, which a browser refuses to
//     set over http://127.0.0.1);
//   - deleting an account also removes its grants, tokens and sessions: oidc-provider looks the
//     account up on refresh (-> invalid_grant) and userinfo (-> 401 invalid_token) but not on
//     introspection, which would otherwise keep answering active:true;
//   - outgoing requests (back-channel logout) may only reach loopback addresses.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import * as dns from 'node:dns';
import { createServer } from 'node:http';
import { isIP } from 'node:net';

import Provider from 'oidc-provider';

const LOOPBACK = '127.0.0.1';
const MAX_BODY = 64 * 1024;

function fail(message) {
  process.stderr.write(`oidc-provider harness: ${message}\n`);
  process.exit(1);
}

function readEnv() {
  const env = process.env;
  const missing = ['OP_CLIENT_ID', 'OP_CLIENT_SECRET', 'OP_REDIRECT_URI', 'OP_ADMIN_TOKEN']
    .filter((name) => !env[name]);
  if (missing.length) fail(`missing environment: ${missing.join(', ')}`);
  const port = Number(env.OP_PORT || 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`OP_PORT: bad port ${env.OP_PORT}`);
  const list = (value) => (value || '').split(/\s+/).filter(Boolean);
  return {
    port,
    clientId: env.OP_CLIENT_ID,
    clientSecret: env.OP_CLIENT_SECRET,
    redirectUris: list(env.OP_REDIRECT_URI),
    postLogoutRedirectUris: list(env.OP_POST_LOGOUT_REDIRECT_URI),
    backchannelLogoutUri: env.OP_BACKCHANNEL_LOGOUT_URI || undefined,
    adminToken: env.OP_ADMIN_TOKEN,
    conformIdTokenClaims: /^(1|true|yes)$/i.test(env.OP_CONFORM_ID_TOKEN_CLAIMS || ''),
  };
}

const cfg = readEnv();

// The only URL the provider ever calls is the back-channel logout URI; keep it on this machine.
function isLoopbackHost(hostname) {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
if (cfg.backchannelLogoutUri) {
  let url;
  try {
    url = new URL(cfg.backchannelLogoutUri);
  } catch {
    fail(`OP_BACKCHANNEL_LOGOUT_URI: not a URL: ${cfg.backchannelLogoutUri}`);
  }
  if (!isLoopbackHost(url.hostname)) fail(`OP_BACKCHANNEL_LOGOUT_URI: not a loopback address: ${url.hostname}`);
}

// ---- accounts -------------------------------------------------------------------------------

// sub -> { password, claims }. Claims are returned as stored; oidc-provider filters them by the
// granted scopes (see `claims` in the configuration below).
const accounts = new Map();

function putAccount(sub, password, claims) {
  accounts.set(sub, { password, claims: { ...claims } });
}

putAccount('alice', 'alice-password', {
  email: 'alice@example.com',
  email_verified: true,
  name: 'Alice Example',
  preferred_username: 'alice',
  groups: ['staff'],
});
putAccount('bob', 'bob-password', {
  email: 'bob@example.com',
  email_verified: false,
  name: 'Bob Example',
  preferred_username: 'bob',
  groups: ['customers'],
});

async function findAccount(ctx, sub) {
  if (!accounts.has(sub)) return undefined; // unknown or deleted: every token of it stops working
  return {
    accountId: sub,
    async claims() {
      const account = accounts.get(sub); // read at use time, so SetClaims shows up at once
      return { ...(account ? structuredClone(account.claims) : {}), sub };
    },
  };
}

// ---- storage --------------------------------------------------------------------------------

// One Map for every model, so the admin API can find everything that belongs to an account.
// (The built-in memory adapter is an LRU that can evict live sessions in a long test run.)
const store = new Map(); // "Model:id" -> { payload, exp (ms epoch) }
const grantIndex = new Map(); // grantId -> Set of keys of tokens issued under it
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

function live(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.exp <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry;
}

class MapAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const exp = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload: structuredClone(payload), exp });
    if (this.model === 'Session' && payload.uid) store.set(`SessionUid:${payload.uid}`, { payload: id, exp });
    if (payload.userCode) store.set(`UserCode:${payload.userCode}`, { payload: id, exp });
    if (GRANTABLE.has(this.model) && payload.grantId) {
      if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
      grantIndex.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    const entry = live(this.key(id));
    return entry ? structuredClone(entry.payload) : undefined;
  }

  async findByUid(uid) {
    const entry = live(`SessionUid:${uid}`);
    return entry ? this.find(entry.payload) : undefined;
  }

  async findByUserCode(userCode) {
    const entry = live(`UserCode:${userCode}`);
    return entry ? this.find(entry.payload) : undefined;
  }

  async consume(id) {
    const entry = live(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) { revokeGrant(grantId); }
}

function revokeGrant(grantId) {
  for (const key of grantIndex.get(grantId) || []) store.delete(key);
  grantIndex.delete(grantId);
}

// Removes every grant, token and session of sub.
function forgetAccount(sub) {
  for (const [key, { payload }] of store) {
    if (payload === null || typeof payload !== 'object' || payload.accountId !== sub) continue;
    if (key.startsWith('Grant:')) revokeGrant(payload.jti);
    if (key.startsWith('Session:') && payload.uid) store.delete(`SessionUid:${payload.uid}`);
    store.delete(key);
  }
}

// ---- counters -------------------------------------------------------------------------------

const counts = {};
function count(name) { counts[name] = (counts[name] || 0) + 1; }

// ---- HTML -----------------------------------------------------------------------------------

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Pages load nothing from anywhere: the tests must not touch the network.
function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:22em;margin:3em auto}label,input,button{display:block;width:100%;margin:.3em 0}.error{color:#b00}</style>
</head><body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

function loginPage(uid, loginHint, error) {
  return page('Sign-in', `${error ? `<p class="error" id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>Login <input name="login" type="text" value="${esc(loginHint)}" required autofocus></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign-in</button>
</form>
<p><a href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

async function logoutSource(ctx, form) {
  // `form` is oidc-provider's form (id="op.logoutForm", hidden xsrf input). The button signs out of
  // the whole session; the script presses it, so a browser test needs no click.
  ctx.body = page('Sign-out', `${form}
<button id="logout" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<script>document.getElementById('logout').click()</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', Object.entries(out)
    .map(([key, value]) => `<p class="error"><b>${esc(key)}</b>: ${esc(value)}</p>`).join('\n'));
}

// ---- provider -------------------------------------------------------------------------------

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

// Resolves only to loopback addresses, so nothing the provider fetches can leave the machine.
function loopbackLookup(hostname, options, callback) {
  dns.lookup(hostname, options, (err, address, family) => {
    if (err) return callback(err, address, family);
    const all = Array.isArray(address) ? address : [{ address, family }];
    const bad = all.find((a) => !isLoopbackHost(a.address));
    if (bad) return callback(new Error(`refusing non-loopback address ${bad.address} for ${hostname}`));
    return callback(null, address, family);
  });
}

function configuration() {
  return {
    adapter: MapAdapter,
    clients: [{
      client_id: cfg.clientId,
      client_secret: cfg.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: cfg.redirectUris,
      post_logout_redirect_uris: cfg.postLogoutRedirectUris,
      ...(cfg.backchannelLogoutUri ? {
        backchannel_logout_uri: cfg.backchannelLogoutUri,
        backchannel_logout_session_required: true,
      } : {}),
    }],
    jwks: { keys: [signingKey()] },
    cookies: {
      keys: [randomBytes(32).toString('hex')],
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    conformIdTokenClaims: cfg.conformIdTokenClaims,
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount,
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        // Belt and braces to forgetAccount: never call a deleted account's token active.
        allowedPolicy: async (ctx, client, token) => !token.accountId || accounts.has(token.accountId),
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError,
    httpOptions: () => ({ signal: AbortSignal.timeout(5000), dnsLookup: loopbackLookup }),
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
  };
}

function countEvents(provider) {
  provider.on('grant.success', (ctx) => count(ctx.oidc.params.grant_type));
  provider.on('grant.error', (ctx) => count(`${ctx.oidc?.params?.grant_type || 'token'}_error`));
  provider.on('userinfo.error', () => count('userinfo_error'));
  provider.on('introspection.error', () => count('introspection_error'));
  provider.on('revocation.error', () => count('revocation_error'));
  provider.on('backchannel.success', () => count('backchannel_logout'));
  provider.on('backchannel.error', (ctx, err) => {
    count('backchannel_logout_error');
    process.stderr.write(`back-channel logout failed: ${err.message}\n`);
  });
  provider.on('end_session.success', () => count('end_session'));
  provider.on('server_error', (ctx, err) => {
    count('server_error');
    process.stderr.write(`server_error: ${err.stack || err}\n`);
  });
}

// ---- HTTP plumbing --------------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

const sendJSON = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));
const sendHTML = (res, status, html) => send(res, status, 'text/html; charset=utf-8', html);

// ---- interactions (login + automatic consent) ------------------------------------------------

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return sendHTML(res, 400, page('Error', '<p class="error">interaction mismatch</p>'));
  const { prompt, params, session, grantId } = details;

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (prompt.name === 'login') {
    if (action === 'login' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const login = form.get('login') || '';
      const account = accounts.get(login);
      const given = Buffer.from(form.get('password') || '');
      const want = Buffer.from(account ? account.password : '');
      if (!account || given.length !== want.length || !timingSafeEqual(given, want)) {
        count('login_failed');
        return sendHTML(res, 200, loginPage(uid, login, 'Unknown login or wrong password.'));
      }
      count('login');
      return provider.interactionFinished(req, res, { login: { accountId: login } },
        { mergeWithLastSubmission: false });
    }
    return sendHTML(res, 200, loginPage(uid, params.login_hint, ''));
  }

  if (prompt.name === 'consent' && req.method === 'GET' && !action) {
    // First-party client: grant whatever was asked, without a page.
    const grant = grantId ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
  }

  return sendHTML(res, 400, page('Error', `<p class="error">unexpected ${esc(req.method)} for prompt ${esc(prompt.name)}</p>`));
}

// ---- admin API ------------------------------------------------------------------------------

function authorized(req) {
  const given = Buffer.from(req.headers.authorization || '');
  const want = Buffer.from(`Bearer ${cfg.adminToken}`);
  return given.length === want.length && timingSafeEqual(given, want);
}

function cleanClaims(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw Object.assign(new Error('claims must be a JSON object'), { status: 400 });
  }
  if ('sub' in value) throw Object.assign(new Error('sub cannot be changed'), { status: 400 });
  return value;
}

async function admin(req, res, path) {
  if (!authorized(req)) return sendJSON(res, 401, { error: 'unauthorized' });
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent); // after /__admin
  const body = async () => {
    const text = await readBody(req);
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      throw Object.assign(new Error('body is not JSON'), { status: 400 });
    }
  };

  // GET /__admin/counts
  if (req.method === 'GET' && parts.length === 1 && parts[0] === 'counts') {
    return sendJSON(res, 200, counts);
  }
  // POST /__admin/accounts  {"sub": "...", "password": "...", "claims": {...}}
  if (req.method === 'POST' && parts.length === 1 && parts[0] === 'accounts') {
    const { sub, password, claims = {} } = await body();
    if (typeof sub !== 'string' || !sub) return sendJSON(res, 400, { error: 'sub required' });
    if (typeof password !== 'string' || !password) return sendJSON(res, 400, { error: 'password required' });
    if (accounts.has(sub)) return sendJSON(res, 409, { error: 'account exists' });
    putAccount(sub, password, cleanClaims(claims));
    return sendJSON(res, 201, { sub });
  }
  if (req.method === 'POST' && parts[0] === 'accounts' && parts.length >= 2) {
    const sub = parts[1];
    if (!accounts.has(sub)) return sendJSON(res, 404, { error: 'no such account' });
    // POST /__admin/accounts/{sub}/delete
    if (parts.length === 3 && parts[2] === 'delete') {
      accounts.delete(sub);
      forgetAccount(sub);
      return sendJSON(res, 200, { deleted: sub });
    }
    // POST /__admin/accounts/{sub}  {claim: value, ...}; null removes a claim
    if (parts.length === 2) {
      const claims = cleanClaims(await body());
      const account = accounts.get(sub);
      for (const [name, value] of Object.entries(claims)) {
        if (value === null) delete account.claims[name];
        else account.claims[name] = value;
      }
      return sendJSON(res, 200, { sub, claims: account.claims });
    }
  }
  return sendJSON(res, 404, { error: 'no such admin route' });
}

// ---- main -----------------------------------------------------------------------------------

let provider;
let providerCallback;
let userinfoPath;
let introspectionPath;
let revocationPath;

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    const status = err.status || err.statusCode || 500;
    if (status >= 500) process.stderr.write(`harness error: ${err.stack || err}\n`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = status >= 500 ? 'internal error' : err.message;
    if (req.url.startsWith('/__admin')) sendJSON(res, status, { error: message });
    else sendHTML(res, status, page('Error', `<p class="error">${esc(message)}</p>`));
  });
});

async function handle(req, res) {
  if (!provider) return sendJSON(res, 503, { error: 'starting' });
  const { pathname } = new URL(req.url, 'http://x');
  if (pathname === '/__admin' || pathname.startsWith('/__admin/')) {
    return admin(req, res, pathname.slice('/__admin'.length));
  }
  const m = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(pathname);
  if (m) return interaction(provider, req, res, m[1], m[2]);
  if (pathname === userinfoPath) count('userinfo');
  if (pathname === introspectionPath) count('introspection');
  if (pathname === revocationPath) count('revocation');
  return providerCallback(req, res);
}

server.listen(cfg.port, LOOPBACK, () => {
  const { port } = server.address();
  const issuer = `http://${LOOPBACK}:${port}`;
  try {
    const p = new Provider(issuer, configuration());
    countEvents(p);
    userinfoPath = p.pathFor('userinfo');
    introspectionPath = p.pathFor('introspection');
    revocationPath = p.pathFor('revocation');
    providerCallback = p.callback();
    provider = p;
  } catch (err) {
    fail(`configuration: ${err.stack || err}`);
  }
  process.stdout.write(`${JSON.stringify({ issuer, admin: `${issuer}/__admin` })}\n`);
});
server.on('error', (err) => fail(`listen: ${err.message}`));

// Exit with the parent: stdin is a pipe from the Go test; EOF means it is gone.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
