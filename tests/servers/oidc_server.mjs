// A real OpenID Provider for the tests: panva's certified oidc-provider, configured from a JSON
// file given as the first argument (or the OIDC_SERVER_CONFIG environment variable):
//
//   {"issuer": "http://127.0.0.1:8080/realms/main", "host": "127.0.0.1", "port": 8080,
//    "tls": {"key": "server.key", "cert": "server.crt"},          // optional: serve https
//    "clients": [{"client_id": "...", "client_secret": "...", "grant_types": [...], ...}],
//    "resources": {"https://api.example": {"audience": "api"}},   // JWT access tokens
//    "defaultResources": {"client-id": "https://api.example"},    // resource when none is asked
//    "clientAuthMethods": ["client_secret_post"],                 // optional, default both
//    "scopes": ["openid", "api:read"],                            // optional: the scopes a
//                                                                 // client's "scope" may limit
//    "clientCredentials": false}                                  // optional, default true
//
// A path in the issuer (Keycloak's /realms/main) is served under that path, as a real provider
// does. `oidc-provider` is resolved from the current directory: run this from the folder where
// .ci/setup/oidc.sh installed the package.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';

const configPath = process.argv[2] || process.env.OIDC_SERVER_CONFIG;
if (!configPath) {
  console.error('usage: node oidc_server.mjs CONFIG.json (or OIDC_SERVER_CONFIG=CONFIG.json)');
  process.exit(2);
}
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));

// oidc-provider lives where the setup script installed it, not next to this file.
const require = createRequire(path.join(process.cwd(), 'package.json'));
const { default: Provider, errors } = await import(require.resolve('oidc-provider'));

const resources = config.resources || {};
const defaultResources = config.defaultResources || {};

const provider = new Provider(config.issuer, {
  clients: config.clients,
  clientAuthMethods: config.clientAuthMethods || ['client_secret_basic', 'client_secret_post'],
  ...(config.scopes ? { scopes: config.scopes } : {}),
  ttl: { ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: config.clientCredentials !== false },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || defaultResources[client.clientId],
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        const resource = resources[resourceIndicator];
        if (!resource) throw new errors.InvalidTarget();
        return {
          scope: '',
          audience: resource.audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
        };
      },
    },
  },
});

// Serve the provider under the issuer's path: oidc-provider reads the mount path from
// req.originalUrl, and everything outside the path is a 404 like on a real server.
const mountPath = new URL(config.issuer).pathname.replace(/\/$/, '');
const callback = provider.callback();
function handler(req, res) {
  if (mountPath) {
    if (req.url !== mountPath && !req.url.startsWith(`${mountPath}/`) && !req.url.startsWith(`${mountPath}?`)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not_found"}');
      return;
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(mountPath.length) || '/';
  }
  callback(req, res);
}

const server = config.tls
  ? https.createServer(
    { key: fs.readFileSync(config.tls.key), cert: fs.readFileSync(config.tls.cert) },
    handler,
  )
  : http.createServer(handler);
server.listen(config.port, config.host || '127.0.0.1', () => {
  console.log(`oidc-provider ${config.issuer} listening on ${config.host || '127.0.0.1'}:${config.port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
