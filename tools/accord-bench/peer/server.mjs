// The peer accord-bench measures beside Accord (docs/benchmarks.md): panva's oidc-provider, a
// certified OpenID provider for Node, issuing RS256 JWT access tokens to a client-credentials
// client, over HTTPS, in `--workers` cluster processes sharing one signing key.
//
//   node server.mjs --port P --cert server.pem --key server-key.pem [--workers 2]
//
// Prints "peer listening on https://localhost:P" once every worker listens.
import cluster from "node:cluster";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    workers: { type: "string", default: "2" },
  },
});
const workers = Number(opts.workers);
const issuer = `https://localhost:${opts.port}`;

if (cluster.isPrimary) {
  // One RSA-2048 key for every worker, so any of them can verify what another signed.
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "bench", use: "sig", alg: "RS256" };
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork({ PEER_JWK: JSON.stringify(jwk) });
    worker.on("message", (m) => {
      if (m === "listening" && ++listening === workers) console.log(`peer listening on ${issuer}`);
    });
  }
  cluster.on("exit", (w, code) => {
    console.error(`peer worker ${w.process.pid} exited (${code})`);
    process.exit(1);
  });
} else {
  const { default: Provider } = await import("oidc-provider");
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "bench-client",
        client_secret: "bench-secret-0123456789",
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "https://graph.example/",
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "read",
          accessTokenTTL: 3600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  const server = https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, provider.callback());
  server.keepAliveTimeout = 60_000;
  // The primary gone, this worker goes too.
  process.on("disconnect", () => process.exit(0));
  server.listen(Number(opts.port), "127.0.0.1", () => process.send("listening"));
}
