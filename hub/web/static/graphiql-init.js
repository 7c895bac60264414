/*
 * Starts GraphiQL on the hub's /graphql page, with browser sign-in.
 *
 * This file exists so that the page needs no inline script: the Content-Security-Policy allows
 * scripts from the hub's own origin only ("script-src 'self'"). The page passes its settings as
 * data attributes of the #graphiql element and a <meta> element; the libraries arrive as UMD
 * globals (React, ReactDOM, GraphiQL, GraphiQLPluginExplorer) from the scripts loaded before this one.
 *
 * Sign-in is the OAuth 2 authorization code flow with PKCE (RFC 6749 section 4.1, RFC 7636 with
 * S256, RFC 9207's iss check) as the hub's public client (data-client-id, no secret):
 *   1. "Sign in": a random code_verifier and state are kept in sessionStorage and the tab goes to
 *      the authorization endpoint with the verifier's SHA-256 challenge;
 *   2. the hub's sign-in page sends the tab back to <origin>/graphql?code=…&state=…&iss=…; this
 *      script checks state and iss, takes code and state out of the address bar and redeems the
 *      code with the verifier at the token endpoint;
 *   3. every HTTP request GraphiQL makes carries "Authorization: Bearer <access token>"; a 401 is
 *      answered by one refresh (the refresh token rotates) and one retry, else the page signs out.
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

  var h = React.createElement;
  var endpoint = root.getAttribute('data-endpoint');
  var clientId = root.getAttribute('data-client-id');
  // Must equal, character for character, the redirect URI the hub registers for its GraphiQL
  // client: issuer + "/graphql". signIn() checks that this page's origin is the issuer.
  var redirectUri = location.origin + endpoint;
  var METADATA_PATH = '/.well-known/oauth-authorization-server';

  // --- where the tokens live ---------------------------------------------------------------------
  //
  // sessionStorage, not memory, and never localStorage or a cookie:
  // - the tokens survive a reload of this tab, and the PKCE verifier and state survive the trip
  //   through the sign-in page (the hub's authorization server keeps no browser session, so losing
  //   them means typing the password again);
  // - sessionStorage belongs to this tab alone and is gone when it closes: a token does not spread
  //   to other tabs or outlive the window, and unlike a cookie it is never sent by itself (no CSRF);
  // - what it costs: a script running in this origin could read it. The CSP lets only the hub's
  //   own files run (no inline script, no eval), and a script that did run here could as well wrap
  //   fetch and catch a token kept in memory, so memory would protect little while losing the
  //   token at every reload. Access tokens are short-lived, refresh tokens rotate on every use (a
  //   reused one revokes its whole family), and "Sign out" revokes both.
  // One known edge: a browser's "Duplicate tab" copies sessionStorage; the copy that refreshes
  // second presents a used refresh token, the hub revokes the family, and both tabs sign out.
  var TOKENS_KEY = 'nrhub.graphiql.tokens';
  var PENDING_KEY = 'nrhub.graphiql.sign-in';

  function readJSON(key) {
    try {
      return JSON.parse(sessionStorage.getItem(key) || 'null');
    } catch (_) {
      return null;
    }
  }

  // --- state shown by the sign-in control --------------------------------------------------------

  var auth = {
    tokens: readJSON(TOKENS_KEY), // {access: string, refresh: string|null} or null
    status: 'signed-out', // 'signed-out' | 'busy' | 'signed-in'
    user: null,
    message: null,
  };
  var listeners = [];

  function update(changes) {
    auth = Object.assign({}, auth, changes);
    listeners.forEach(function (listener) {
      listener(auth);
    });
  }

  function keepTokens(body) {
    var tokens = { access: body.access_token, refresh: body.refresh_token || null };
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    auth.tokens = tokens;
  }

  function forgetTokens(message) {
    sessionStorage.removeItem(TOKENS_KEY);
    update({ tokens: null, status: 'signed-out', user: null, message: message || null });
  }

  // --- the authorization server ------------------------------------------------------------------

  var metadataPromise = null;

  // RFC 8414 metadata of this origin's authorization server; fetched once per page.
  function metadata() {
    if (!metadataPromise) {
      metadataPromise = fetch(METADATA_PATH, { headers: { accept: 'application/json' }, credentials: 'omit' }).then(
        function (response) {
          if (!response.ok) {
            throw new Error('the hub did not publish its sign-in settings (HTTP ' + response.status + ')');
          }
          return response.json();
        },
      );
      metadataPromise.catch(function () {
        metadataPromise = null; // try again next time
      });
    }
    return metadataPromise;
  }

  function base64url(bytes) {
    var text = '';
    new Uint8Array(bytes).forEach(function (byte) {
      text += String.fromCharCode(byte);
    });
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomBase64url(length) {
    return base64url(crypto.getRandomValues(new Uint8Array(length)));
  }

  async function tokenRequest(fields) {
    var meta = await metadata();
    // URLSearchParams: the body goes as application/x-www-form-urlencoded (RFC 6749 section 4.1.3).
    var response = await fetch(meta.token_endpoint, {
      method: 'POST',
      body: new URLSearchParams(Object.assign({ client_id: clientId }, fields)),
      credentials: 'omit',
      cache: 'no-store',
    });
    var body = await response.json().catch(function () {
      return {};
    });
    if (!response.ok || !body.access_token) {
      throw new Error(body.error_description || body.error || 'the token endpoint answered ' + response.status);
    }
    return body;
  }

  async function signIn() {
    update({ status: 'busy', message: null });
    try {
      var meta = await metadata();
      // The hub registers exactly issuer + "/graphql" as this client's redirect URI.
      if (meta.issuer !== location.origin) {
        throw new Error('sign-in works on this hub at ' + meta.issuer + endpoint + ', open GraphiQL there');
      }
      if (!window.crypto || !crypto.subtle) {
        // Browsers offer crypto.subtle only in secure contexts: https, or http on localhost.
        throw new Error('sign-in needs the hub to be served over https (or on localhost)');
      }
      var verifier = randomBase64url(32); // 43 characters, 256 bits (RFC 7636 section 4.1)
      var state = randomBase64url(16);
      var digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier: verifier, state: state, issuer: meta.issuer }));
      var query = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        code_challenge: base64url(digest),
        code_challenge_method: 'S256',
        state: state,
      });
      location.assign(meta.authorization_endpoint + '?' + query.toString());
    } catch (error) {
      update({ status: 'signed-out', message: 'Sign-in failed: ' + error.message });
    }
  }

  // The authorization server's answer, if this load is one: ?code=…&state=…&iss=… or ?error=….
  function takeCallback() {
    var params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) {
      return null;
    }
    var callback = {};
    ['code', 'state', 'iss', 'error', 'error_description'].forEach(function (name) {
      callback[name] = params.get(name);
      params.delete(name);
    });
    // Out of the address bar (and so out of history, bookmarks and reloads) before anything else.
    var rest = params.toString();
    history.replaceState(history.state, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
    return callback;
  }

  async function completeSignIn(callback) {
    var pending = readJSON(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY); // one use, whatever happens
    if (callback.error) {
      update({ message: 'Not signed in: ' + (callback.error_description || callback.error) });
      return;
    }
    // CSRF defence (RFC 6749 section 10.12): only a sign-in this tab started is accepted.
    if (!pending || !callback.state || callback.state !== pending.state) {
      update({ message: 'Sign-in refused: the answer does not belong to a sign-in started in this tab' });
      return;
    }
    // Mix-up defence (RFC 9207): the answer must come from the issuer the sign-in went to.
    if (callback.iss !== pending.issuer) {
      update({ message: 'Sign-in refused: the answer came from another issuer' });
      return;
    }
    update({ status: 'busy', message: null });
    try {
      keepTokens(
        await tokenRequest({
          grant_type: 'authorization_code',
          code: callback.code,
          code_verifier: pending.verifier,
          redirect_uri: redirectUri,
        }),
      );
    } catch (error) {
      forgetTokens('Sign-in failed: ' + error.message);
    }
  }

  // One refresh at a time: two concurrent 401s must not both present the same refresh token,
  // because the hub treats a second use as theft and revokes the whole family.
  var refreshing = null;

  function refreshAfter(rejectedAccess) {
    if (auth.tokens && auth.tokens.access !== rejectedAccess) {
      return Promise.resolve(auth.tokens.access); // someone refreshed meanwhile
    }
    if (!refreshing) {
      var refresh = auth.tokens && auth.tokens.refresh;
      refreshing = (
        refresh
          ? tokenRequest({ grant_type: 'refresh_token', refresh_token: refresh }).then(function (body) {
              keepTokens(body);
              return body.access_token;
            })
          : Promise.reject(new Error('no refresh token'))
      )
        .catch(function () {
          forgetTokens('Your session has ended. Sign in again.');
          return null;
        })
        .finally(function () {
          refreshing = null;
        });
    }
    return refreshing;
  }

  function withBearer(init, headers, access) {
    return Object.assign({}, init, { headers: Object.assign({}, headers, { authorization: 'Bearer ' + access }) });
  }

  // fetch for every HTTP request to /graphql: adds the bearer token; on 401 refreshes once and retries.
  async function authFetch(url, init) {
    init = Object.assign({ credentials: 'omit' }, init);
    var headers = Object.assign({}, init.headers);
    var typed = Object.keys(headers).some(function (name) {
      return name.toLowerCase() === 'authorization';
    });
    // An Authorization header typed into GraphiQL's header editor wins over the signed-in token.
    if (typed || !auth.tokens) {
      return fetch(url, init);
    }
    var access = auth.tokens.access;
    var response = await fetch(url, withBearer(init, headers, access));
    if (response.status !== 401) {
      return response;
    }
    var fresh = await refreshAfter(access);
    if (!fresh) {
      return response; // signed out; GraphiQL shows the hub's UNAUTHENTICATED error
    }
    response = await fetch(url, withBearer(init, headers, fresh));
    if (response.status === 401) {
      forgetTokens('The hub refused the renewed token. Sign in again.');
    }
    return response;
  }

  async function whoAmI() {
    if (!auth.tokens) {
      return;
    }
    try {
      var response = await authFetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: 'query SignedInAs { me { user clientId } }', operationName: 'SignedInAs' }),
      });
      var body = await response.json();
      var me = body && body.data && body.data.me;
      if (auth.tokens && me) {
        update({ status: 'signed-in', user: me.user || me.clientId });
      } else if (auth.tokens) {
        update({ status: 'signed-in', user: null });
      }
    } catch (error) {
      update({ status: auth.tokens ? 'signed-in' : 'signed-out', message: 'Could not ask who you are: ' + error });
    }
  }

  async function signOut() {
    var tokens = auth.tokens;
    forgetTokens(null);
    if (!tokens) {
      return;
    }
    // RFC 7009: revoke the refresh token (its whole family) and the access token, so a copy left
    // anywhere stops working now rather than at expiry. Best effort: the tab has forgotten them.
    try {
      var meta = await metadata();
      var requests = [
        [tokens.refresh, 'refresh_token'],
        [tokens.access, 'access_token'],
      ]
        .filter(function (pair) {
          return pair[0];
        })
        .map(function (pair) {
          return fetch(meta.revocation_endpoint, {
            method: 'POST',
            body: new URLSearchParams({ token: pair[0], token_type_hint: pair[1], client_id: clientId }),
            credentials: 'omit',
          });
        });
      await Promise.all(requests);
    } catch (_) {
      // Nothing to tell the person: they are signed out of this page either way.
    }
  }

  // --- the control, in GraphiQL's logo slot (top right) ------------------------------------------

  function SignInControl() {
    var pair = React.useState(auth);
    var view = pair[0];
    var setView = pair[1];
    React.useEffect(function () {
      listeners.push(setView);
      setView(auth);
      return function () {
        listeners = listeners.filter(function (listener) {
          return listener !== setView;
        });
      };
    }, []);

    var parts = [];
    if (view.message) {
      parts.push(h('span', { key: 'message', className: 'graphiql-hub-auth-message', role: 'status' }, view.message));
    }
    if (view.status === 'signed-in') {
      parts.push(
        h(
          'span',
          { key: 'who', className: 'graphiql-hub-auth-user' },
          view.user ? 'Signed in as ' : 'Signed in',
          view.user ? h('strong', null, view.user) : null,
        ),
        h('button', { key: 'out', type: 'button', className: 'graphiql-hub-auth-button', onClick: signOut }, 'Sign out'),
      );
    } else if (view.status === 'busy') {
      parts.push(h('span', { key: 'busy', className: 'graphiql-hub-auth-user' }, 'Signing in…'));
    } else {
      parts.push(
        h('button', { key: 'in', type: 'button', className: 'graphiql-hub-auth-button', onClick: signIn }, 'Sign in'),
      );
    }
    // Replaces GraphiQL's default logo, a link to github.com: the page links nowhere off the hub.
    return h(
      'div',
      { className: 'graphiql-hub-auth', 'aria-live': 'polite' },
      h('span', { key: 'title', className: 'graphiql-hub-title' }, 'Graph', h('em', null, 'i'), 'QL'),
      parts,
    );
  }

  // --- GraphiQL ----------------------------------------------------------------------------------

  // Settles a sign-in this load completes (the token exchange) before GraphiQL's first request,
  // so that its schema request and first query already go out with the token.
  var callback = takeCallback();
  var ready = (callback ? completeSignIn(callback) : Promise.resolve()).then(whoAmI).catch(function (error) {
    update({ message: 'Sign-in failed: ' + error });
  });

  // WebSocket side (graphql-transport-ws, issue 7). The one place to change when the hub serves
  // subscriptions is the page: hub/graphiql.py renders data-subscription-endpoint (graphiql_page(…,
  // subscriptions=True)). GraphiQL then runs subscription operations through its bundled graphql-ws
  // client, opening a connection per subscription, whose connection_init payload is
  // {...wsConnectionParams, ...headers from GraphiQL's header editor}. The getter reads the token
  // when each connection opens, so it carries the current one as {"Authorization": "Bearer …"}, the
  // way the hub verifies it (and as on HTTP, a header typed in the editor wins). Without the
  // attribute there is no subscriptionUrl and a subscription operation gets GraphiQL's own error.
  var subscriptionPath = root.getAttribute('data-subscription-endpoint');
  var subscriptionUrl = subscriptionPath
    ? new URL(subscriptionPath, location.href).href.replace(/^http(s?):/, 'ws$1:')
    : undefined;
  var wsConnectionParams = Object.defineProperty({}, 'Authorization', {
    enumerable: true,
    get: function () {
      return auth.tokens ? 'Bearer ' + auth.tokens.access : undefined;
    },
  });

  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    // Every HTTP request GraphiQL makes (schema introspection included) goes through authFetch.
    fetch: function (url, init) {
      return ready.then(function () {
        return authFetch(url, init);
      });
    },
    subscriptionUrl: subscriptionUrl,
    wsConnectionParams: subscriptionUrl ? wsConnectionParams : undefined,
    // The hub speaks GraphQL over HTTP without incremental delivery (@defer/@stream).
    enableIncrementalDelivery: false,
    headers: {
      accept: 'application/graphql-response+json, application/json;q=0.9',
      // Headers typed into GraphiQL's header editor are merged over these for each request and
      // are not persisted (shouldPersistHeaders: false).
    },
  });

  ReactDOM.createRoot(root).render(
    h(
      GraphiQL,
      {
        fetcher: fetcher,
        defaultQuery: root.getAttribute('data-default-query') || undefined,
        plugins: [GraphiQLPluginExplorer.explorerPlugin()],
        shouldPersistHeaders: false,
      },
      h(GraphiQL.Logo, null, h(SignInControl)),
    ),
  );
})();
