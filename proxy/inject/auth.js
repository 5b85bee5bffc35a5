/*
 * zdgate loader: served at /zendesk/auth.js and added by zdgate to the pages it proxies.
 *
 * It keeps the Zendesk widget on the page logged in as exactly the user of the visitor's zdgate
 * session, and as nobody else. The widget asks for a JWT through the function registered here,
 * and that function asks zdgate's same-origin token route for a fresh one. Neither this file nor
 * the page ever contains a token.
 *
 * What it remembers: one opaque value in localStorage ("zdgate:widget-user"), the token route's
 * "user" (a keyed hash of the Zendesk external_id). Never the email, never the external_id.
 *
 *   login          the token route answers 200 for user U: if the widget was logged in as
 *                  another user, zE('messenger','logoutUser') first; then
 *                  zE('messenger','loginUser', jwtCallback, loginCallback). jwtCallback fetches
 *                  a fresh token on every call (the widget calls it again when a JWT expires).
 *   signed out /   401 (unauthenticated, session_revoked) or a refusal (403): logoutUser, but
 *   revoked        only if this browser was logged in. A visitor who never logged in never gets
 *                  logoutUser, so an anonymous conversation is never wiped.
 *   IdP down       503 or a network error: a few retries with backoff; no logout.
 *   sign-out page  zdgate's signed-out page: logoutUser, then on to the IdP or rd.
 *   chat           the classic widget: zESettings.webWidget.authenticate.chat.jwtFn, and
 *                  zE('webWidget','logout') where messaging calls logoutUser.
 *
 * Failures (loginCallback's LoginFailedError, token-route refusals, a widget that has not
 * appeared after a minute) are reported to POST /zendesk/events. The loader never stops waiting
 * for window.zE, so a widget held back by a consent banner still gets logged in.
 *
 * For single-page apps: window.zdgate.refresh(), window.zdgate.logout({rd, navigate}),
 * window.zdgate.user, and the window event "zdgate:identitychange" ({signedIn, user}).
 *
 * Strict mode, no eval, no inline script or handler (works under a strict CSP with a nonce).
 */
(function (window) {
  'use strict';

  // zdgate writes its configuration between the two markers when it serves this file.
  var config = /*zdgate:config*/{"flavor":"messaging","tokenPath":"/zendesk/token","eventsPath":"/zendesk/events","signOutPath":"/oauth2/sign_out","version":""}/*zdgate:end*/;

  if (window.zdgate) {
    return; // included twice: the first copy does the work
  }

  var STORE_KEY = 'zdgate:widget-user';
  var REPORT_AFTER_MS = 60000; // report "widget_missing" after this long; keep waiting anyway
  var POLL_MAX_MS = 2000; // slowest poll for window.zE
  var RETRY_MS = [1000, 3000, 9000]; // token route 503 / network: then give up for now
  var REUSE_MS = 10000; // a token fetched this recently is handed to the first jwtCallback
  var LOGOUT_SETTLE_MS = 300; // after logoutUser, before the signed-out page moves on
  var messagingFlavor = config.flavor !== 'chat';

  function warn(message) {
    if (window.console && typeof window.console.warn === 'function') {
      window.console.warn('zdgate: ' + message);
    }
  }

  function now() {
    return new Date().getTime();
  }

  // ---- reports to /zendesk/events (no cookie; once per event and reason per page) ----

  var reported = {};
  function report(event, reason, type) {
    reason = String(reason || 'unknown').slice(0, 64);
    if (reported[event + ' ' + reason]) {
      return;
    }
    reported[event + ' ' + reason] = true;
    var body = { flavor: config.flavor, event: event, reason: reason };
    if (type) {
      body.type = String(type).slice(0, 64);
    }
    try {
      window.fetch(config.eventsPath, {
        method: 'POST',
        credentials: 'omit',
        keepalive: true,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body)
      }).catch(function () {});
    } catch (err) {
      // reporting must never break the page
    }
  }

  // ---- the remembered user (opaque) ----

  var memory = null; // when localStorage is unavailable: this page only
  function remembered() {
    try {
      return window.localStorage.getItem(STORE_KEY);
    } catch (err) {
      return memory;
    }
  }

  function remember(user) {
    var before = remembered();
    memory = user;
    try {
      if (user) {
        window.localStorage.setItem(STORE_KEY, user);
      } else {
        window.localStorage.removeItem(STORE_KEY);
      }
    } catch (err) {
      // private mode and the like: memory only
    }
    if (before !== user) {
      try {
        window.dispatchEvent(new window.CustomEvent('zdgate:identitychange', {
          detail: { signedIn: !!user, user: user || null }
        }));
      } catch (err) {
        // very old browsers: no event
      }
    }
  }

  // ---- the token route ----

  var tokenURL = config.tokenPath + (config.tokenPath.indexOf('?') < 0 ? '?' : '&') +
    'flavor=' + encodeURIComponent(config.flavor);

  // fetchToken resolves (never rejects) to one of
  //   {status: 'ok', jwt, user, at}   a token for the session's user
  //   {status: 'signed_out', code}    401: no session, or the IdP ended it
  //   {status: 'refused', code}       any other refusal (403 email_not_verified, claim_..., 404)
  //   {status: 'unavailable', code}   503 or no answer: worth retrying, never a logout
  function fetchToken() {
    return window.fetch(tokenURL, {
      method: 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Accept': 'application/json', 'X-Requested-With': 'zdgate' }
    }).then(function (res) {
      return res.json().then(null, function () { return {}; }).then(function (body) {
        var code = body && typeof body.error === 'string' ? body.error : 'http_error';
        if (code.indexOf('claim_') === 0) {
          code = 'claim';
        }
        if (res.ok) {
          if (!body || typeof body.jwt !== 'string' || body.jwt === '' || typeof body.user !== 'string' || body.user === '') {
            return { status: 'refused', code: 'bad_response' };
          }
          return { status: 'ok', jwt: body.jwt, user: body.user, at: now() };
        }
        if (res.status === 401) {
          return { status: 'signed_out', code: code };
        }
        if (res.status === 503) {
          return { status: 'unavailable', code: code };
        }
        return { status: 'refused', code: res.status === 404 ? 'not_found' : code };
      });
    }, function () {
      return { status: 'unavailable', code: 'network' };
    });
  }

  // getToken is fetchToken with a bounded retry of what may pass (503, network errors).
  function getToken() {
    return new Promise(function (resolve) {
      var attempt = 0;
      (function once() {
        fetchToken().then(function (t) {
          if (t.status === 'unavailable' && attempt < RETRY_MS.length) {
            window.setTimeout(once, RETRY_MS[attempt++]);
            return;
          }
          if (t.status === 'unavailable' || t.status === 'refused') {
            warn('the token route: ' + t.code);
            report('token_failed', t.code);
          }
          resolve(t);
        });
      })();
    });
  }

  // ---- waiting for the widget ----

  function widget() {
    return typeof window.zE === 'function' ? window.zE : null;
  }

  // whenWidget calls fn(zE) once window.zE exists. It polls with backoff (25 ms doubling to
  // POLL_MAX_MS). With a limit (ms, 0 = look once), it gives up after it and calls onTimeout;
  // without one it never gives up, and reports "widget_missing" once after REPORT_AFTER_MS.
  function whenWidget(fn, limit, onTimeout) {
    var delay = 25;
    var waited = 0;
    var told = false;
    (function poll() {
      var zE = widget();
      if (zE) {
        fn(zE);
        return;
      }
      if (limit !== undefined && waited >= limit) {
        onTimeout();
        return;
      }
      if (limit === undefined && !told && waited >= REPORT_AFTER_MS) {
        told = true;
        warn('the Zendesk widget (window.zE) has not appeared yet; still waiting');
        report('widget_missing', 'timeout');
      }
      waited += delay;
      window.setTimeout(poll, delay);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    })();
  }

  function widgetLogout(zE) {
    if (messagingFlavor) {
      zE('messenger', 'logoutUser');
    } else {
      zE('webWidget', 'logout');
    }
  }

  // ---- messaging ----

  var loggedInAs = null; // the user this page logged the widget in as
  var prefetched = null; // the token that decided the login, for the first jwtCallback

  // reconcile brings the widget in line with what the token route said.
  function reconcile(zE, t) {
    var before = loggedInAs || remembered();
    if (t.status === 'ok') {
      if (loggedInAs === t.user) {
        return; // already logged in as this user on this page
      }
      if (before && before !== t.user) {
        widgetLogout(zE); // user switch: forget the last user first
        loggedInAs = null;
      }
      prefetched = t;
      loggedInAs = t.user;
      remember(t.user);
      zE('messenger', 'loginUser', jwtCallback, loginCallback);
      return;
    }
    if (t.status === 'signed_out' || t.status === 'refused') {
      if (before) {
        widgetLogout(zE); // only a browser that was logged in is logged out
      }
      loggedInAs = null;
      remember(null);
    }
    // unavailable: keep everything as it is; the next call tries again
  }

  // jwtCallback is what the widget calls for a JWT: at login, and again whenever it needs a new
  // one (the last one expired). It fetches a fresh token every time (the one that decided this
  // login, if the widget asks within REUSE_MS). A token for anyone but the logged-in user is
  // never handed over: the widget is brought in line instead.
  function jwtCallback(callback) {
    var p = prefetched;
    prefetched = null;
    if (p && p.user === loggedInAs && now() - p.at < REUSE_MS) {
      callback(p.jwt);
      return;
    }
    getToken().then(function (t) {
      if (t.status === 'ok' && t.user === loggedInAs) {
        callback(t.jwt);
        return;
      }
      if (t.status !== 'unavailable') {
        reconcile(widget(), t);
      }
    });
  }

  function loginCallback(err) {
    if (err) {
      warn('the widget refused the login: ' + (err.reason || err.message || String(err)));
      report('login_failed', err.reason || 'unknown', err.type);
    }
  }

  var syncing = null;
  // sync asks the token route who the session is and brings the widget in line, once at a time.
  function sync() {
    if (!syncing) {
      syncing = new Promise(function (resolve) {
        whenWidget(function (zE) {
          getToken().then(function (t) {
            reconcile(zE, t);
            resolve();
          });
        });
      }).then(function () {
        syncing = null;
        return state();
      });
    }
    return syncing;
  }

  // ---- chat (classic Web Widget) ----

  // objectAt returns parent[key], replacing anything that is not an object with {}.
  function objectAt(parent, key) {
    var value = parent[key];
    if (value === null || typeof value !== 'object') {
      value = parent[key] = {};
    }
    return value;
  }

  function jwtFn(callback) {
    getToken().then(function (t) {
      var before = remembered();
      var zE = widget();
      if (t.status === 'ok') {
        if (before && before !== t.user && zE) {
          zE('webWidget', 'logout'); // user switch
        }
        remember(t.user);
        callback(t.jwt);
      } else if (t.status !== 'unavailable') {
        if (before && zE) {
          zE('webWidget', 'logout');
        }
        remember(null);
      }
    });
  }

  function chat() {
    // The classic widget reads zESettings when it starts: set jwtFn now, keeping the page's other
    // settings. zdgate injects this file before its widget snippet, and deferred scripts run in
    // order.
    var settings = objectAt(window, 'zESettings');
    var authenticate = objectAt(objectAt(settings, 'webWidget'), 'authenticate');
    objectAt(authenticate, 'chat').jwtFn = jwtFn;
    // A widget that started before this file ran gets the function through its API.
    if (widget()) {
      reauthenticate();
    }
  }

  function reauthenticate() {
    try {
      window.zE('webWidget', 'updateSettings', { webWidget: { authenticate: { chat: { jwtFn: jwtFn } } } });
      window.zE('webWidget', 'chat:reauthenticate');
    } catch (err) {
      warn('could not hand the token function to the widget: ' + err);
    }
  }

  // ---- zdgate's signed-out page ----

  function signedOutPage(el) {
    var next = el.getAttribute('data-next') || '';
    var link = el.getAttribute('data-link') === 'true';
    var wait = parseInt(el.getAttribute('data-wait'), 10); // 0: the page has no widget to wait for
    if (isNaN(wait) || wait < 0) {
      wait = 4000;
    }
    var moved = false;
    function go() {
      if (!moved && next && !link) {
        moved = true;
        window.location.replace(next);
      }
    }
    whenWidget(function (zE) {
      try {
        widgetLogout(zE);
        remember(null);
      } catch (err) {
        warn('the widget logout failed: ' + err);
      }
      window.setTimeout(go, LOGOUT_SETTLE_MS);
    }, wait, function () {
      // No widget here: keep the remembered user, so the next page with the widget logs it out
      // before anyone else is logged in.
      go();
    });
  }

  // ---- the page API ----

  function state() {
    var user = remembered();
    return { signedIn: !!user, user: user || null };
  }

  var api = {
    version: config.version,
    flavor: config.flavor,
    // refresh checks the session now (after an in-page login or logout) and brings the widget in
    // line; it resolves to {signedIn, user} once the widget is there.
    refresh: function () {
      if (messagingFlavor) {
        return sync();
      }
      return new Promise(function (resolve) {
        whenWidget(function () {
          reauthenticate();
          resolve(state());
        });
      });
    },
    // logout logs the widget out and forgets the user, then (unless navigate is false) ends the
    // zdgate session at /oauth2/sign_out, coming back to rd (default: this page).
    logout: function (opts) {
      opts = opts || {};
      var rd = opts.rd || (window.location.pathname + window.location.search);
      return new Promise(function (resolve) {
        function done() {
          if (opts.navigate !== false) {
            window.location.assign(config.signOutPath + '?rd=' + encodeURIComponent(rd));
          }
          resolve(state());
        }
        whenWidget(function (zE) {
          widgetLogout(zE);
          loggedInAs = null;
          remember(null);
          done();
        }, 4000, done);
      });
    }
  };
  Object.defineProperty(api, 'user', { enumerable: true, get: function () { return state().user; } });
  window.zdgate = Object.freeze(api);

  if (typeof window.fetch !== 'function' || typeof window.Promise !== 'function') {
    warn('this browser has no fetch; the widget stays anonymous');
    return;
  }
  var signedOut = window.document.getElementById('zdgate-signed-out');
  if (signedOut) {
    signedOutPage(signedOut);
  } else if (messagingFlavor) {
    sync();
  } else {
    chat();
  }
})(window);
