/*
 * zdgate loader: served at /zendesk/auth.js and added by zdgate to the pages it proxies.
 *
 * It connects the Zendesk widget on the page to the visitor's zdgate session. The widget
 * asks for a JWT through the function registered here, and that function fetches a fresh
 * token from zdgate's same-origin token route every time. Neither this file nor the page
 * ever contains a token.
 *
 *   messaging: zE('messenger', 'loginUser', jwtCallback); when the token route answers 401
 *              (signed out, or the identity provider ended the session) it calls
 *              zE('messenger', 'logoutUser'), so the widget forgets the user.
 *   chat:      window.zESettings.webWidget.authenticate.chat.jwtFn; on 401 it calls
 *              zE('webWidget', 'logout').
 *
 * Strict mode, no eval, no inline script (works under a strict CSP), and nothing global
 * but window.zdgate = {version, flavor} for debugging.
 */
(function (window) {
  'use strict';

  // zdgate writes its configuration between the two markers when it serves this file.
  var config = /*zdgate:config*/{"flavor":"messaging","tokenPath":"/zendesk/token","version":""}/*zdgate:end*/;

  if (window.zdgate) {
    return; // included twice: the first copy does the work
  }
  window.zdgate = Object.freeze({ version: config.version, flavor: config.flavor });

  var SIGNED_OUT = 'zdgate: signed out';
  var ZE_WAIT_MS = 60000; // how long to wait for the widget snippet

  function warn(message) {
    if (window.console && typeof window.console.warn === 'function') {
      window.console.warn('zdgate: ' + message);
    }
  }

  function describe(err) {
    return (err && (err.reason || err.message)) || String(err);
  }

  var tokenURL = config.tokenPath + (config.tokenPath.indexOf('?') < 0 ? '?' : '&') +
    'flavor=' + encodeURIComponent(config.flavor);

  // fetchToken resolves to the bare JWT string. It rejects with an Error whose message
  // is SIGNED_OUT when the token route answers 401, and with another Error otherwise.
  function fetchToken() {
    return window.fetch(tokenURL, {
      method: 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Accept': 'application/json', 'X-Requested-With': 'zdgate' }
    }).then(function (res) {
      if (res.status === 401) {
        throw new Error(SIGNED_OUT);
      }
      if (!res.ok) {
        throw new Error('the token route answered ' + res.status);
      }
      return res.json();
    }).then(function (body) {
      if (!body || typeof body.jwt !== 'string' || body.jwt === '') {
        throw new Error('the token route answered without a jwt');
      }
      return body.jwt;
    });
  }

  function isSignedOut(err) {
    return !!err && err.message === SIGNED_OUT;
  }

  // whenReady calls fn(zE) once the widget snippet has defined window.zE. The snippet
  // may run before or after this file, so poll, backing off from 25 ms to 1 s, and give
  // up after ZE_WAIT_MS.
  function whenReady(fn) {
    var delay = 25;
    var waited = 0;
    (function poll() {
      if (typeof window.zE === 'function') {
        fn(window.zE);
        return;
      }
      if (waited >= ZE_WAIT_MS) {
        warn('the Zendesk widget (window.zE) did not load');
        return;
      }
      waited += delay;
      window.setTimeout(poll, delay);
      delay = Math.min(delay * 2, 1000);
    })();
  }

  function messaging() {
    whenReady(function (zE) {
      // The widget calls jwtCallback at login and again whenever it needs a new
      // token (for instance after the last one expired): fetch one every time.
      zE('messenger', 'loginUser', function jwtCallback(callback) {
        fetchToken().then(function (t) { callback(t); }, function (err) {
          if (isSignedOut(err)) {
            zE('messenger', 'logoutUser');
          } else {
            warn(describe(err));
          }
        });
      }, function loginCallback(err) {
        if (err) {
          warn('the widget refused the login: ' + describe(err));
        }
      });
    });
  }

  // objectAt returns parent[key], replacing anything that is not an object with {}.
  function objectAt(parent, key) {
    var value = parent[key];
    if (value === null || typeof value !== 'object') {
      value = parent[key] = {};
    }
    return value;
  }

  function chat() {
    function jwtFn(callback) {
      fetchToken().then(function (t) { callback(t); }, function (err) {
        if (isSignedOut(err)) {
          whenReady(function (zE) { zE('webWidget', 'logout'); });
        } else {
          warn(describe(err));
        }
      });
    }

    // The classic widget reads zESettings when it starts: set jwtFn now, keeping the
    // page's other settings. zdgate injects this file before its widget snippet, and
    // deferred scripts run in order.
    var settings = objectAt(window, 'zESettings');
    var authenticate = objectAt(objectAt(settings, 'webWidget'), 'authenticate');
    objectAt(authenticate, 'chat').jwtFn = jwtFn;

    // A widget that started before this file ran gets the function through its API.
    if (typeof window.zE === 'function') {
      try {
        window.zE('webWidget', 'updateSettings', { webWidget: { authenticate: { chat: { jwtFn: jwtFn } } } });
        window.zE('webWidget', 'chat:reauthenticate');
      } catch (err) {
        warn('could not hand the token function to the widget: ' + describe(err));
      }
    }
  }

  if (typeof window.fetch !== 'function' || typeof window.Promise !== 'function') {
    warn('this browser has no fetch; the widget stays anonymous');
    return;
  }
  if (config.flavor === 'chat') {
    chat();
  } else {
    messaging();
  }
})(window);
