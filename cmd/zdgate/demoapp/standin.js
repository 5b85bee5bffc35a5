// zdgate demo: an OFFLINE STAND-IN for Zendesk's widget (zE). It is not Zendesk code. It accepts
// the calls the real widget does — zE('messenger','loginUser', jwtCallback, loginCallback),
// zE('messenger','logoutUser'), and the classic zESettings.webWidget.authenticate.chat.jwtFn with
// zE('webWidget','logout') — and shows what the real widget would receive, so the demo works
// without the network.
//
// Every call is also POSTed to the demo app (/public/standin/calls), which keeps the log: the
// panel shows the steps across page loads (login, logout, user switch, failures), and the browser
// tests read the same log, which survives navigations and cleared cookies or storage.
//
// Its own script URL may carry ?delay=MS: zE then appears only after that long (a widget held
// back by a consent banner). The "Simulate a login failure" button makes the next login answer
// loginCallback with a LoginFailedError, as Zendesk does when it refuses a JWT.
(function () {
  'use strict';
  var me = document.currentScript;
  var delay = 0;
  if (me && me.src) {
    var m = /[?&]delay=(\d+)/.exec(me.src);
    if (m) delay = parseInt(m[1], 10);
  }
  var state = window.__zdDemo = { jwts: [], logouts: 0, calls: [], loginFailures: 0 };
  var FAIL_KEY = 'zd-standin-fail';
  var panel;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function decode(part) {
    var s = part.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    return JSON.parse(decodeURIComponent(Array.prototype.map.call(atob(s), function (c) {
      return '%' + ('00' + c.charCodeAt(0).toString(16)).slice(-2);
    }).join('')));
  }

  // record sends one call to the demo app's log; keepalive lets it finish while the page moves on.
  function record(c) {
    c.page = location.pathname;
    c.t = performance.timeOrigin + performance.now();
    state.calls.push(c.call);
    try {
      fetch('/public/standin/calls', {
        method: 'POST', keepalive: true, credentials: 'omit',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(c)
      }).then(showLog, function () {});
    } catch (e) {}
  }

  function ensurePanel() {
    if (panel) return panel;
    panel = el('aside', { id: 'zd-standin', 'aria-label': 'Zendesk widget stand-in' });
    panel.appendChild(el('h2', {}, 'Zendesk widget — offline stand-in'));
    panel.appendChild(el('p', { 'class': 'note' }, 'Not Zendesk code: this box shows what the real widget would receive from zdgate.'));
    panel.appendChild(el('p', { id: 'zd-status' }, delay ? 'Widget still loading…' : 'Waiting for zE(\'messenger\',\'loginUser\')…'));
    var again = el('button', { id: 'zd-again', type: 'button' }, 'Ask for a new JWT (as on expiry)');
    again.addEventListener('click', function () { askAgain(); });
    var fail = el('button', { id: 'zd-fail', type: 'button' }, 'Simulate a login failure');
    fail.addEventListener('click', function () {
      try { sessionStorage.setItem(FAIL_KEY, '1'); } catch (e) {}
      location.reload();
    });
    panel.appendChild(again);
    panel.appendChild(fail);
    panel.appendChild(el('h3', {}, 'Steps (across pages, newest last)'));
    panel.appendChild(el('ol', { id: 'zd-log' }));
    panel.appendChild(el('div', { id: 'zd-standin-body' }));
    (document.body || document.documentElement).appendChild(panel);
    showLog();
    return panel;
  }

  function describe(c) {
    switch (c.call) {
      case 'messenger.loginUser': return ['login', 'loginUser registered'];
      case 'jwt': return ['login', 'JWT received for ' + (c.name || '?') + ' (external_id ' + (c.sub || '?') + ')'];
      case 'messenger.logoutUser': return ['logout', 'logoutUser: the widget forgot the user'];
      case 'webWidget.logout': return ['logout', "zE('webWidget','logout'): the widget forgot the user"];
      case 'loginCallback': return ['fail', 'login failed: LoginFailedError, reason ' + c.reason + ' (reported to /zendesk/events)'];
    }
    return ['', c.call];
  }

  function showLog() {
    if (!panel) return;
    fetch('/public/standin/calls', { credentials: 'omit', cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (calls) {
        var ol = document.getElementById('zd-log');
        if (!ol) return;
        ol.textContent = '';
        (calls || []).slice(-12).forEach(function (c) {
          var d = describe(c);
          ol.appendChild(el('li', { 'class': 'step-' + d[0] }, c.at + '  ' + c.page + '  ' + d[1]));
        });
      }, function () {});
  }

  function status(text) {
    ensurePanel();
    document.getElementById('zd-status').textContent = text;
  }

  function show(jwt, via, loginCallback) {
    state.jwts.push(jwt);
    ensurePanel();
    var parts = jwt.split('.');
    var claims = {};
    try { claims = decode(parts[1]); } catch (e) {}
    record({ call: 'jwt', sub: claims.external_id, name: claims.name, jwt: jwt });
    status('Logged in as ' + (claims.name || '?') + ' (external_id ' + (claims.external_id || '?') + ')');
    var body = document.getElementById('zd-standin-body');
    body.textContent = '';
    // With several identity providers the demo app says whose session this page is (the
    // X-Forwarded-Provider zdgate sent it) and that provider's external_id prefix.
    var who = document.body ? document.body.dataset : {};
    if (who.zdProvider) {
      var prefixed = typeof claims.external_id === 'string' && claims.external_id.indexOf(who.zdPrefix) === 0;
      body.appendChild(el('p', { id: 'zd-identity', 'class': prefixed ? 'ok' : 'bad' },
        'Identity provider: ' + (who.zdProviderName || who.zdProvider) + ' — external_id ' + claims.external_id +
        (prefixed ? ' carries its prefix ' : ' LACKS its prefix ') + who.zdPrefix));
    }
    body.appendChild(el('p', {}, 'Received a JWT through ' + via + ':'));
    body.appendChild(el('code', { id: 'zd-jwt', 'class': 'jwt' }, jwt));
    try {
      body.appendChild(el('h3', {}, 'Header'));
      body.appendChild(el('pre', { id: 'zd-header' }, JSON.stringify(decode(parts[0]), null, 2)));
      body.appendChild(el('h3', {}, 'Claims'));
      body.appendChild(el('pre', { id: 'zd-claims' }, JSON.stringify(claims, null, 2)));
    } catch (e) {
      body.appendChild(el('p', {}, 'Could not decode: ' + e));
    }
    var verdict = el('p', { id: 'zd-verified' }, 'Checking the signature…');
    body.appendChild(verdict);
    fetch('/public/verify', { method: 'POST', credentials: 'same-origin', body: jwt })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        verdict.textContent = v.valid ? '✔ Signature and every Zendesk rule check out with the ' + v.flavor + ' secret.' : '✘ ' + (v.problems || []).join('; ');
        verdict.className = v.valid ? 'ok' : 'bad';
        state.verified = v;
        if (typeof loginCallback !== 'function') return;
        var simulate = false;
        try { simulate = sessionStorage.getItem(FAIL_KEY) === '1'; sessionStorage.removeItem(FAIL_KEY); } catch (e) {}
        if (!v.valid || simulate) {
          // What the real widget hands loginCallback when Zendesk refuses the JWT.
          var err = { type: 'LoginFailedError', reason: v.valid ? 'conflict' : 'invalid_auth', message: 'Zendesk refused the login (simulated by the stand-in)' };
          state.loginFailures++;
          record({ call: 'loginCallback', reason: err.reason });
          status('Login FAILED: ' + err.type + ' (' + err.reason + ')');
          loginCallback(err);
        } else {
          loginCallback(null);
        }
      });
  }

  // askAgain calls the registered jwtCallback again, as the widget does when a JWT has expired.
  function askAgain() {
    if (typeof state.jwtCallback === 'function') {
      state.jwtCallback(function (jwt) { show(jwt, 'jwtCallback (asked again)'); });
    }
  }
  state.askAgain = askAgain;

  function loggedOut(call) {
    state.logouts++;
    record({ call: call });
    status('Logged out: the widget forgot the user (anonymous now).');
    var body = document.getElementById('zd-standin-body');
    if (body) body.textContent = '';
  }

  function zE(ns, method, arg, loginCallback) {
    var call = ns + '.' + method;
    if (call === 'messenger.loginUser' && typeof arg === 'function') {
      record({ call: call });
      state.jwtCallback = arg;
      arg(function (jwt) { show(jwt, "zE('messenger','loginUser')", loginCallback); });
    } else if (call === 'messenger.logoutUser' || call === 'webWidget.logout') {
      loggedOut(call);
    } else {
      record({ call: call });
    }
  }

  // The classic widget reads zESettings when it starts; do the same once the page has loaded.
  function classic() {
    var s = window.zESettings, fn = s && s.webWidget && s.webWidget.authenticate && s.webWidget.authenticate.chat && s.webWidget.authenticate.chat.jwtFn;
    if (typeof fn === 'function') {
      state.jwtCallback = fn;
      fn(function (jwt) { show(jwt, 'zESettings.webWidget.authenticate.chat.jwtFn'); });
    }
  }
  function start() {
    window.zE = zE;
    ensurePanel();
    if (!state.jwts.length) status('Widget loaded; anonymous until zdgate logs it in.');
    if (document.readyState === 'complete') setTimeout(classic, 0); else window.addEventListener('load', function () { setTimeout(classic, 0); });
  }
  if (delay) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ensurePanel); else ensurePanel();
    setTimeout(start, delay);
  } else {
    start();
  }
})();
