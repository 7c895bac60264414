/*
 * Test-only probe, loaded first by the page the browser test opens (never by the hub's page).
 *
 * Records every Content-Security-Policy violation and every script error as JSON attributes of
 * <html>, so that `chromium --dump-dom` shows them. Then drives GraphiQL a little: opens the
 * explorer plugin and waits until it lists the schema's fields (so the introspection request went
 * through the fetcher), runs the example query and waits for its result, and, when the URL's hash asks for it, opens the settings dialog, which makes
 * GraphiQL insert a <style> element that needs the page's style nonce.
 */
(function () {
  'use strict';
  var root = document.documentElement;
  var violations = [];
  var errors = [];

  function record(name, list, item) {
    list.push(item);
    root.setAttribute(name, JSON.stringify(list));
  }

  document.addEventListener('securitypolicyviolation', function (event) {
    record('data-csp-violations', violations, {
      directive: event.effectiveDirective,
      blocked: event.blockedURI,
      sample: event.sample,
    });
  });
  // Capture phase: failed <script>/<link> loads do not bubble to window.
  window.addEventListener(
    'error',
    function (event) {
      var target = event.target;
      var what = target && target !== window ? 'failed to load ' + (target.src || target.href) : event.message;
      record('data-js-errors', errors, String(what));
    },
    true,
  );

  var steps = [
    function openExplorer() {
      var button = document.querySelector('button[aria-label="Show GraphiQL Explorer"]');
      if (button) button.click();
      return Boolean(button);
    },
    function explorerListsFields() {
      var explorer = document.querySelector('.graphiql-explorer-root');
      return Boolean(explorer && explorer.textContent.indexOf('indicators') >= 0);
    },
    function runExampleQuery() {
      var button = document.querySelector('button[aria-label^="Execute query"]');
      if (button) button.click();
      return Boolean(button);
    },
    function resultShown() {
      var result = document.querySelector('.graphiql-response');
      return Boolean(result && result.textContent.indexOf('GDP_GROWTH') >= 0);
    },
    function openSettings() {
      if (location.hash !== '#settings') return true;
      var button = document.querySelector('button[aria-label="Open settings dialog"]');
      if (button) button.click();
      return Boolean(button);
    },
    function settingsShown() {
      return location.hash !== '#settings' || Boolean(document.querySelector('[role="dialog"]'));
    },
  ];
  var done = [];
  var timer = setInterval(function () {
    while (steps.length && steps[0]()) {
      done.push(steps.shift().name);
      root.setAttribute('data-probe-steps', done.join(' '));
    }
    if (!steps.length) {
      clearInterval(timer);
      root.setAttribute('data-probe-done', 'true');
    }
  }, 50);
})();
