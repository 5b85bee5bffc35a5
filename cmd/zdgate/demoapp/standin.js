// zdgate demo: an OFFLINE STAND-IN for Zendesk's widget (zE). It is not Zendesk code. It accepts
// the same calls the real widget does — zE('messenger','loginUser', jwtCallback),
// zE('messenger','logoutUser'), and the classic zESettings.webWidget.authenticate.chat.jwtFn — and
// shows what the real widget would receive, so the demo works without the network.
(function () {
  'use strict';
  var state = window.__zdDemo = { jwts: [], logouts: 0, calls: [] };
  var panel;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function ensurePanel() {
    if (panel) return panel;
    panel = el('aside', { id: 'zd-standin', 'aria-label': 'Zendesk widget stand-in' });
    panel.appendChild(el('h2', {}, 'Zendesk widget — offline stand-in'));
    panel.appendChild(el('p', { 'class': 'note' }, 'Not Zendesk code: this box shows what the real widget would receive from zdgate.'));
    panel.appendChild(el('div', { id: 'zd-standin-body' }, 'Waiting for zE(\'messenger\',\'loginUser\')…'));
    (document.body || document.documentElement).appendChild(panel);
    return panel;
  }
  function decode(part) {
    var s = part.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    return JSON.parse(decodeURIComponent(Array.prototype.map.call(atob(s), function (c) {
      return '%' + ('00' + c.charCodeAt(0).toString(16)).slice(-2);
    }).join('')));
  }
  function show(jwt, via) {
    state.jwts.push(jwt);
    ensurePanel();
    var body = document.getElementById('zd-standin-body');
    body.textContent = '';
    var parts = jwt.split('.');
    body.appendChild(el('p', {}, 'Received a JWT through ' + via + ':'));
    body.appendChild(el('code', { id: 'zd-jwt', 'class': 'jwt' }, jwt));
    try {
      body.appendChild(el('h3', {}, 'Header'));
      body.appendChild(el('pre', { id: 'zd-header' }, JSON.stringify(decode(parts[0]), null, 2)));
      body.appendChild(el('h3', {}, 'Claims'));
      body.appendChild(el('pre', { id: 'zd-claims' }, JSON.stringify(decode(parts[1]), null, 2)));
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
      });
  }
  function loggedOut() {
    state.logouts++;
    ensurePanel();
    document.getElementById('zd-standin-body').textContent = 'logoutUser was called: the widget forgot the user.';
  }
  window.zE = function (ns, method, arg) {
    state.calls.push(ns + '.' + method);
    if (ns === 'messenger' && method === 'loginUser' && typeof arg === 'function') {
      arg(function (jwt) { show(jwt, "zE('messenger','loginUser')"); });
    } else if ((ns === 'messenger' && method === 'logoutUser') || (ns === 'webWidget' && method === 'logout')) {
      loggedOut();
    }
  };
  // The classic widget reads zESettings when it starts; do the same once the page has loaded.
  function classic() {
    var s = window.zESettings, fn = s && s.webWidget && s.webWidget.authenticate && s.webWidget.authenticate.chat && s.webWidget.authenticate.chat.jwtFn;
    if (typeof fn === 'function') fn(function (jwt) { show(jwt, 'zESettings.webWidget.authenticate.chat.jwtFn'); });
  }
  if (document.readyState === 'complete') setTimeout(classic, 0); else window.addEventListener('load', function () { setTimeout(classic, 0); });
})();
