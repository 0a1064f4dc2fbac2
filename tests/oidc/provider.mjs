// A real OpenID provider (panva's oidc-provider) shaped like Keycloak, for
// the tests of Casewire's token verification. One Provider per realm, each
// mounted under /realms/<realm>, all signing with the RS256 key read from
// --key (created when the file is missing: a new file is a key rotation).
// An ES256 key is kept next to it (<key>.es256.json) for one client.
//
//   node provider.mjs --port 8180 --key /tmp/k.json [--realms casewire,globex,initech]
//
// initech exists to be a realm that Casewire does not trust.
//
// Clients, in every realm, each with the secret "<client id>-secret":
//   casewire-tests  client_credentials + password
//   intake-bot      client_credentials; a service account with role "integration"
//   short-lived     client_credentials + password; access tokens live 1 second
//   casewire-es256  client_credentials + password; access tokens signed ES256
// Users: see USERS. Passwords equal user names, as in the dev issuer.

import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT },
    key: { type: 'string', default: process.env.OIDC_KEY },
    realms: { type: 'string', default: process.env.OIDC_REALMS ?? 'casewire,globex,initech' },
  },
});
if (!args.port || !args.key) {
  console.error('usage: node provider.mjs --port P --key FILE [--realms casewire,globex,initech]');
  process.exit(2);
}
const port = Number(args.port);

const ALL_QUEUES = ['/queues/support', '/queues/claims', '/queues/complaints', '/queues/it'];
// Users as a Keycloak realm holds them. Keycloak adds its default roles to
// every user's token (see defaultRoles). Some are shaped to attack the
// platform: a profile without e-mail, an unverified address that belongs
// to someone else, a manager nobody put in a queue group, and a `tenant`
// attribute mapped into the token that names another realm's tenant. sam
// works the support queue only, which sees complaints but may not work them
// (the demo definition's access groups).
const USERS = {
  casewire: {
    alice: { roles: ['case-worker'], groups: ['/queues/support', '/queues/complaints'], email: 'alice@casewire.example' },
    bob: { roles: ['case-manager'], groups: ALL_QUEUES, email: 'bob@casewire.example' },
    dave: { roles: ['requester'], groups: [], email: 'dave@example.com' },
    norah: { roles: ['requester'], groups: [] },
    mallory: { roles: ['requester'], groups: [], email: 'dave@example.com', emailVerified: false },
    mona: { roles: ['case-manager'], groups: [], email: 'mona@casewire.example' },
    sam: { roles: ['case-worker'], groups: ['/queues/support'], email: 'sam@casewire.example' },
    trudy: { roles: ['case-admin'], groups: [], email: 'trudy@casewire.example', tenant: 'globex' },
  },
  globex: {
    gina: { roles: ['case-admin'], groups: [], email: 'gina@globex.example' },
  },
  initech: {
    ivy: { roles: ['case-admin'], groups: [], email: 'ivy@initech.example' },
  },
};
const SERVICE_ACCOUNT_ROLES = { 'intake-bot': ['integration'] };
const ACCESS_TOKEN_TTL = { 'short-lived': 1 };
const SIGNING_ALG = { 'casewire-es256': 'ES256' };
// Keycloak's audience for our API; the verifier is configured to accept it.
const RESOURCE = 'urn:casewire:api';
const AUDIENCE = 'casewire';

// What Keycloak puts in realm_access.roles of every user of a realm.
function defaultRoles(realm) {
  return [`default-roles-${realm}`, 'offline_access', 'uma_authorization'];
}

function loadOrCreateKey(file, alg) {
  if (existsSync(file)) {
    return JSON.parse(readFileSync(file, 'utf8'));
  }
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig' };
  writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

// Keycloak subjects are UUIDs; these are stable across restarts.
function subjectOf(realm, name) {
  const h = createHash('sha256').update(`${realm}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function client(id, grants) {
  return {
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: grants,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

function resourceServerInfo(resource, c) {
  if (resource !== RESOURCE) throw new errors.InvalidTarget();
  return {
    scope: 'profile email',
    audience: AUDIENCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: ACCESS_TOKEN_TTL[c.clientId] ?? 300,
    jwt: { sign: { alg: SIGNING_ALG[c.clientId] ?? 'RS256' } },
  };
}

function makeProvider(realm, keys) {
  const issuer = `http://127.0.0.1:${port}/realms/${realm}`;
  const users = USERS[realm] ?? {};
  const userBySubject = new Map(Object.keys(users).map((name) => [subjectOf(realm, name), name]));
  const provider = new Provider(issuer, {
    jwks: { keys },
    clients: [
      client('casewire-tests', ['client_credentials', 'password']),
      client('intake-bot', ['client_credentials']),
      client('short-lived', ['client_credentials', 'password']),
      client('casewire-es256', ['client_credentials', 'password']),
    ],
    cookies: { keys: [randomUUID()] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, c) => resourceServerInfo(resource, c),
      },
    },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
    },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      end_session: '/protocol/openid-connect/logout',
      introspection: '/protocol/openid-connect/token/introspect',
      revocation: '/protocol/openid-connect/revoke',
    },
    formats: {
      customizers: {
        // Keycloak gives a service account a user of its own, so `sub` is
        // a UUID there rather than the client id.
        jwt: (ctx, token, jwt) => {
          if (token.kind === 'ClientCredentials') {
            jwt.payload.sub = subjectOf(realm, `service-account-${token.clientId}`);
          }
        },
      },
    },
    // Keycloak-shaped claims in every access token.
    extraTokenClaims: (ctx, token) => {
      if (token.kind === 'ClientCredentials') {
        return {
          preferred_username: `service-account-${token.clientId}`,
          realm_access: { roles: [...(SERVICE_ACCOUNT_ROLES[token.clientId] ?? []), ...defaultRoles(realm)] },
          groups: [],
          tenant: realm,
          azp: token.clientId,
        };
      }
      const name = userBySubject.get(token.accountId);
      const user = users[name];
      if (!user) return undefined;
      const claims = {
        preferred_username: name,
        realm_access: { roles: [...user.roles, ...defaultRoles(realm)] },
        groups: user.groups,
        tenant: user.tenant ?? realm,
        azp: token.clientId,
      };
      // Keycloak leaves both out for a user without an address.
      if (user.email) {
        claims.email = user.email;
        claims.email_verified = user.emailVerified ?? true;
      }
      return claims;
    },
  });

  // The resource-owner password grant is not built in. The token is still
  // the provider's own AccessToken model, so it is signed, formatted and
  // given claims exactly like the built-in grants' tokens.
  provider.registerGrantType(
    'password',
    async (ctx) => {
      const { username, password } = ctx.oidc.params;
      if (!username || !users[username] || password !== username) {
        throw new errors.InvalidGrant('invalid user credentials');
      }
      const { client: c } = ctx.oidc;
      const token = new provider.AccessToken({
        accountId: subjectOf(realm, username),
        client: c,
        gty: 'password',
      });
      const info = resourceServerInfo(RESOURCE, c);
      token.resourceServer = new provider.ResourceServer(RESOURCE, info);
      token.scope = info.scope;
      ctx.oidc.entity('AccessToken', token);
      const value = await token.save();
      ctx.body = {
        access_token: value,
        token_type: token.tokenType,
        expires_in: token.expiration,
        scope: token.scope,
      };
    },
    ['username', 'password', 'scope'],
  );
  return provider;
}

const keys = [
  loadOrCreateKey(args.key, 'RS256'),
  loadOrCreateKey(`${args.key.replace(/\.json$/, '')}.es256.json`, 'ES256'),
];
const realms = new Map();
for (const realm of args.realms.split(',').filter(Boolean)) {
  realms.set(realm, makeProvider(realm, keys).callback());
}

const server = createServer((req, res) => {
  const m = /^\/realms\/([^/?]+)(.*)$/.exec(req.url ?? '');
  const handle = m && realms.get(m[1]);
  if (!handle) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'realm not found' }));
    return;
  }
  // The provider derives its mount path from originalUrl minus url, as
  // under express' app.use(prefix, ...).
  req.originalUrl = req.url;
  req.url = m[2] === '' || m[2].startsWith('?') ? `/${m[2]}` : m[2];
  handle(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
