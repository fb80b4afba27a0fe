// A real OpenID provider for the tests: node-oidc-provider (certified), on loopback.
// Usage: node provider.mjs PORT ACCOUNTS.json CLIENT.json
// Accounts are re-read at every lookup, so a test can remove one (the provider then no longer
// knows that user: its refresh tokens answer invalid_grant). Any password is accepted (the
// library's development login page); the login name is the account id.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, accountsFile, clientFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const client = JSON.parse(readFileSync(clientFile, 'utf8'));

const provider = new Provider(issuer, {
  clients: [client],
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-only-cookie-key'] },
  async findAccount(ctx, sub) {
    const accounts = JSON.parse(readFileSync(accountsFile, 'utf8'));
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account }; } };
  },
});
provider.proxy = false;
const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
