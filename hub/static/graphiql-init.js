/*
 * Starts GraphiQL on the hub's /graphql page.
 *
 * This file exists so that the page needs no inline script: the Content-Security-Policy allows
 * scripts from the hub's own origin only ("script-src 'self'"). The page passes its settings as
 * data attributes of the #graphiql element and a <meta> element; the libraries arrive as UMD
 * globals (React, ReactDOM, GraphiQL, GraphiQLPluginExplorer) from the scripts loaded before this one.
 */
(function () {
  'use strict';

  var root = document.getElementById('graphiql');
  if (!root || !window.React || !window.ReactDOM || !window.GraphiQL || !window.GraphiQLPluginExplorer) {
    if (root) {
      root.textContent = 'GraphiQL could not start: its scripts did not load.';
    }
    return;
  }

  // GraphiQL's dialogs lock page scrolling by inserting a <style> element (react-style-singleton),
  // which reads the nonce from this global. The page's CSP allows styles with this per-response nonce
  // and from 'self' only, so without it those <style> elements would be refused.
  var nonceMeta = document.querySelector('meta[name="graphiql-style-nonce"]');
  if (nonceMeta) {
    window.__webpack_nonce__ = nonceMeta.getAttribute('content');
  }

  var fetcher = GraphiQL.createFetcher({
    url: root.getAttribute('data-endpoint'),
    // The hub speaks GraphQL over HTTP without incremental delivery (@defer/@stream).
    enableIncrementalDelivery: false,
    headers: {
      accept: 'application/graphql-response+json, application/json;q=0.9',
      // Sign-in placeholder: once the browser sign-in exists (OAuth 2 authorization code with
      // PKCE), a "Sign in" button obtains an access token and it is sent from here as
      // `authorization: 'Bearer ' + token`. Headers typed into GraphiQL's header editor are
      // merged over these for each request and are not persisted (shouldPersistHeaders: false).
    },
  });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.getAttribute('data-default-query') || undefined,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      shouldPersistHeaders: false,
    }),
  );
})();
