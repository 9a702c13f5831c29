// An Entra ID (Azure AD) stand-in for the token endpoint that @azure/identity's
// ClientAssertionCredential / WorkloadIdentityCredential and ClientSecretCredential call.
// It validates a federated client assertion the way Entra does: the identity's federated
// credentials by exact issuer, subject and audience, the signature against the issuer's JWKS found
// through OIDC discovery, and the validity window; failures carry Entra's AADSTS codes.
// It also serves the node's managed identities, over App Service's protocol (IDENTITY_ENDPOINT) on
// its HTTPS port and over IMDS's (what an AKS node uses) on a plain-HTTP port: handleImds.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  SignJWT,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type JWK,
  type JSONWebKeySet,
} from 'jose';
import type { Directory, Identity } from './directory.js';
import { Faults, HttpError, httpsGetJson, readBody, sendJson } from './http.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CLOCK_SKEW_S = 300;

export interface EntraOptions {
  directory: Directory;
  /** Base URL clients use as AZURE_AUTHORITY_HOST, e.g. https://127.0.0.1:PORT */
  authorityHost: () => string;
  /** CA that signed the service-account issuer's TLS certificate (the apiserver's). */
  issuerCa?: string;
  accessTokenLifetimeS?: number;
}

export interface TokenRecord {
  at: number;
  tenant: string;
  clientId: string;
  grant: 'client_assertion' | 'client_secret' | 'managed_identity';
  outcome: string;
  /** The `jti` of the service-account token presented as the client assertion (tests check which one). */
  assertionJti?: string;
  /** For managed identities: which protocol asked. */
  endpoint?: 'appService' | 'imds';
}

/**
 * One node's managed identities, served over both App Service's protocol (found by its header) and
 * IMDS's (each node has its own IMDS, so its own port: see server.ts).
 */
export interface MsiConfig {
  header: string;
  systemAssigned?: string;
  attached: string[];
}

export class EntraStandIn {
  readonly faults = new Faults();
  /** The nodes' managed identities by node name; "default" is served on the ready file's IMDS port. */
  readonly nodes = new Map<string, MsiConfig>();
  readonly tokenRequests: TokenRecord[] = [];
  private signingKey!: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  private publicJwk!: JWK;
  private readonly kid = randomUUID();
  private readonly issuerKeys = new Map<string, { jwks: ReturnType<typeof createLocalJWKSet>; fetched: number }>();
  accessTokenLifetimeS: number;
  /** Per client id, for tests that need one identity's tokens to expire quickly (others keep the default). */
  readonly accessTokenLifetimes = new Map<string, number>();

  constructor(private readonly opts: EntraOptions) {
    this.accessTokenLifetimeS = opts.accessTokenLifetimeS ?? 3599;
  }

  async init(): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    this.signingKey = privateKey;
    this.publicJwk = { ...(await exportJWK(publicKey)), kid: this.kid, use: 'sig', alg: 'RS256' };
  }

  /** Keys that sign access tokens; the Key Vault emulator verifies tokens with them. */
  get jwks(): JSONWebKeySet {
    return { keys: [this.publicJwk] };
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://stand-in');
    const parts = url.pathname.split('/').filter(Boolean);
    const tenant = parts[0] ?? '';
    const rest = parts.slice(1).join('/');
    try {
      const form =
        req.method === 'POST' && rest === 'oauth2/v2.0/token' ? new URLSearchParams(await readBody(req)) : undefined;
      const fault = this.faults.take(url.pathname, form?.get('client_id') ?? undefined);
      if (fault) {
        if (form) this.tokenRequests.push(tokenRecord(tenant, form, `fault ${fault.status}`));
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        const headers: Record<string, string> =
          fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        return sendJson(
          res,
          fault.status,
          aadError('temporarily_unavailable', 'AADSTS90033', 'A transient error has occurred. Please try again.'),
          headers,
        );
      }
      if (
        req.method === 'GET' &&
        (rest === 'v2.0/.well-known/openid-configuration' || rest === '.well-known/openid-configuration')
      ) {
        return sendJson(res, 200, this.openidConfiguration(tenant));
      }
      if (req.method === 'GET' && rest === 'discovery/v2.0/keys') return sendJson(res, 200, this.jwks);
      if (req.method === 'GET' && url.pathname === '/msi/token') return await this.managedIdentityToken(req, url, res);
      if (form) return await this.token(tenant, form, res);
      throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError)
        return sendJson(res, err.status, aadError(err.code, String(err.extra.aadsts ?? ''), err.message));
      return sendJson(res, 500, aadError('server_error', 'AADSTS90000', String(err)));
    }
  }

  private openidConfiguration(tenant: string) {
    const base = `${this.opts.authorityHost()}/${tenant}`;
    return {
      issuer: `${base}/v2.0`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_types_supported: ['code', 'id_token', 'token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      tenant_region_scope: 'NA',
    };
  }

  private async token(tenant: string, form: URLSearchParams, res: ServerResponse): Promise<void> {
    const clientId = form.get('client_id') ?? '';
    const record = tokenRecord(tenant, form, 'ok');
    this.tokenRequests.push(record);
    try {
      if (form.get('grant_type') !== 'client_credentials') {
        throw new HttpError(
          400,
          'unsupported_grant_type',
          `AADSTS70003: The app requested an unsupported grant type '${form.get('grant_type')}'.`,
          { aadsts: 'AADSTS70003' },
        );
      }
      const resource = clientCredentialsResource(form.get('scope') ?? '');
      const identity = this.opts.directory.identities.get(clientId);
      if (!identity || identity.tenantId !== tenant) {
        throw new HttpError(
          400,
          'unauthorized_client',
          `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
          { aadsts: 'AADSTS700016' },
        );
      }
      if (form.has('client_secret')) {
        if (!this.opts.directory.checkSecret(identity, form.get('client_secret') ?? '')) {
          throw new HttpError(
            401,
            'invalid_client',
            `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
            { aadsts: 'AADSTS7000215' },
          );
        }
      } else {
        if (form.get('client_assertion_type') !== ASSERTION_TYPE || !form.get('client_assertion')) {
          throw new HttpError(
            401,
            'invalid_client',
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            { aadsts: 'AADSTS7000218' },
          );
        }
        await this.checkAssertion(identity, form.get('client_assertion')!);
        const jti = decodeJwt(form.get('client_assertion')!).jti;
        if (jti) record.assertionJti = jti;
      }
      const { token } = await this.accessToken(identity, tenant, resource);
      const lifetime = this.lifetimeOf(identity);
      sendJson(res, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
    } catch (err) {
      record.outcome = err instanceof HttpError ? String(err.extra.aadsts ?? err.code) : 'error';
      throw err;
    }
  }

  /** The App Service managed-identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER). */
  private async managedIdentityToken(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const given = req.headers['x-identity-header'];
    const msi = [...this.nodes.values()].find((n) => n.header !== '' && n.header === given);
    if (!msi) {
      return sendJson(res, 401, { statusCode: 401, message: 'Missing or invalid X-IDENTITY-HEADER' });
    }
    const clientId = url.searchParams.get('client_id') ?? url.searchParams.get('mi_res_id') ?? msi.systemAssigned ?? '';
    const identity = this.opts.directory.findIdentity(clientId);
    if (!identity || !msi.attached.includes(identity.clientId)) {
      return sendJson(res, 400, {
        statusCode: 400,
        message: `No managed identity with client id '${clientId}' is assigned to this resource.`,
        correlationId: randomUUID(),
      });
    }
    const resource = (url.searchParams.get('resource') ?? '').replace(/\/\.default$/, '').replace(/\/$/, '');
    const { token, expiresOn } = await this.accessToken(identity, identity.tenantId, resource);
    this.tokenRequests.push({
      at: Date.now(),
      tenant: identity.tenantId,
      clientId: identity.clientId,
      grant: 'managed_identity',
      endpoint: 'appService',
      outcome: 'ok',
    });
    sendJson(res, 200, {
      access_token: token,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    });
  }

  /**
   * IMDS's token endpoint, `GET /metadata/identity/oauth2/token`, served on its own plain-HTTP
   * port: what MSAL calls on an AKS node or VM (at AZURE_POD_IDENTITY_AUTHORITY_HOST when set, see
   * msal-node's Imds source). Shapes follow the IMDS REST spec (azure-rest-api-specs,
   * specification/imds/data-plane/Microsoft.InstanceMetadataService/stable/2018-02-01/imds.json:
   * `client_id` / `object_id` / `msi_res_id` select the identity; every response field is a string;
   * errors are `{ error, error_description }`); the messages are real IMDS responses cited below.
   */
  async handleImds(req: IncomingMessage, res: ServerResponse, node = 'default'): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://169.254.169.254');
    try {
      const fault = this.faults.take(url.pathname, url.searchParams.get('client_id') ?? undefined);
      if (fault) {
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        const headers: Record<string, string> =
          fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        return sendJson(res, fault.status, imdsFaultBody(fault.status), headers);
      }
      // The header comes first: IMDS refuses anything without it (an SSRF guard; the SDK's
      // availability probe counts on this 400). IMDS docs FAQ: "400 Bad Request, Required metadata
      // header not specified"; the body as the Azure SDK for .NET's IMDS tests mock it
      // (sdk/identity/Azure.Identity/tests/ManagedIdentityCredentialTests.cs).
      if (req.headers.metadata !== 'true')
        return sendJson(res, 400, imdsError('invalid_request', 'Required metadata header not specified'));
      // 404 and 405: the spec's example bodies. The trailing slash: msal-node canonicalises
      // AZURE_POD_IDENTITY_AUTHORITY_HOST + the path (msal-common UrlString.canonicalizeUri), so it
      // asks for `…/token/`.
      if (url.pathname.replace(/\/$/, '') !== IMDS_TOKEN_PATH)
        return sendJson(res, 404, imdsError('not_found', 'Not found'));
      if (req.method !== 'GET') return sendJson(res, 405, imdsError('method_not_allowed', 'Not allowed'));
      const q = url.searchParams;
      const record: TokenRecord = {
        at: Date.now(),
        tenant: '',
        clientId: q.get('client_id') ?? q.get('object_id') ?? q.get('msi_res_id') ?? '',
        grant: 'managed_identity',
        endpoint: 'imds',
        outcome: 'ok',
      };
      this.tokenRequests.push(record);
      const chosen = this.imdsIdentity(q, this.nodes.get(node));
      if (typeof chosen === 'string') {
        record.outcome = chosen;
        return sendJson(res, 400, imdsError('invalid_request', chosen));
      }
      Object.assign(record, { tenant: chosen.tenantId, clientId: chosen.clientId });
      const resource = (q.get('resource') ?? '').replace(/\/\.default$/, '').replace(/\/$/, '');
      const lifetime = this.lifetimeOf(chosen);
      const { token, expiresOn } = await this.accessToken(chosen, chosen.tenantId, resource);
      // The spec's IdentityTokenResponse, every field a string, as in its example (getIdentityToken.json).
      sendJson(res, 200, {
        access_token: token,
        expires_in: String(lifetime),
        expires_on: String(expiresOn),
        ext_expires_in: String(lifetime),
        not_before: String(expiresOn - lifetime),
        resource,
        token_type: 'Bearer',
        client_id: chosen.clientId,
      });
    } catch (err) {
      sendJson(res, 500, imdsError('server_error', String(err)));
    }
  }

  /** The identity an IMDS request asks for, or the error description IMDS answers with. */
  private imdsIdentity(q: URLSearchParams, msi: MsiConfig | undefined): Identity | string {
    // Real responses: "Identity not found" (Azure/aad-pod-identity#778, Azure/azure-sdk-for-net#37278);
    // "Multiple user assigned identities exist, …" (Hexadite/acs-keyvault-agent#43, a full IMDS reply;
    // Azure/azure-sdk-for-rust#748).
    const NOT_FOUND = 'Identity not found';
    const attached = (msi?.attached ?? [])
      .map((id) => this.opts.directory.identities.get(id))
      .filter((i): i is Identity => i !== undefined);
    const byClientId = q.get('client_id');
    const byObjectId = q.get('object_id');
    const byResourceId = q.get('msi_res_id');
    if (byClientId || byObjectId || byResourceId) {
      // The spec calls the three mutually exclusive; MSAL sends one.
      const name = byResourceId
        ? /\/providers\/microsoft\.managedidentity\/userassignedidentities\/([^/]+)$/i
            .exec(byResourceId)?.[1]
            ?.toLowerCase()
        : undefined;
      const found = attached.find((i) =>
        byClientId
          ? i.clientId === byClientId
          : byObjectId
            ? i.principalId === byObjectId
            : i.name.toLowerCase() === name,
      );
      return found ?? NOT_FOUND;
    }
    // No identity named: the managed identities FAQ ("What identity will IMDS default to if don't
    // specify the identity in the request?"): the system-assigned one; else the only user-assigned
    // one; with several user-assigned ones the request must name one.
    const system = msi?.systemAssigned ? this.opts.directory.identities.get(msi.systemAssigned) : undefined;
    if (system) return system;
    const user = attached.filter((i) => i.clientId !== msi?.systemAssigned);
    if (user.length === 1) return user[0]!;
    if (user.length > 1)
      return 'Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request';
    return NOT_FOUND;
  }

  private lifetimeOf(identity: Identity): number {
    return this.accessTokenLifetimes.get(identity.clientId) ?? this.accessTokenLifetimeS;
  }

  private async accessToken(
    identity: Identity,
    tenant: string,
    resource: string,
  ): Promise<{ token: string; expiresOn: number }> {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = this.lifetimeOf(identity);
    const token = await new SignJWT({
      tid: tenant,
      oid: identity.principalId,
      appid: identity.clientId,
      azp: identity.clientId,
      idtyp: 'app',
      ver: '1.0',
    })
      .setProtectedHeader({ alg: 'RS256', kid: this.kid, typ: 'JWT' })
      .setIssuer(`https://sts.windows.net/${tenant}/`)
      .setAudience(resource)
      .setSubject(identity.principalId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + lifetime)
      .setJti(randomUUID())
      .sign(this.signingKey);
    return { token, expiresOn: now + lifetime };
  }

  private async checkAssertion(identity: Identity, assertion: string): Promise<void> {
    let claims: ReturnType<typeof decodeJwt>;
    try {
      decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      throw new HttpError(400, 'invalid_client', 'AADSTS50027: JWT token is invalid or malformed.', {
        aadsts: 'AADSTS50027',
      });
    }
    const fics = identity.federatedCredentials;
    if (fics.length === 0) {
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS70025: The client '${identity.clientId}'(${identity.name}) has no configured federated identity credentials.`,
        { aadsts: 'AADSTS70025' },
      );
    }
    const iss = claims.iss ?? '';
    const sub = claims.sub ?? '';
    const auds = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
    const byIssuer = fics.filter((f) => f.issuer === iss);
    if (byIssuer.length === 0) {
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS700211: No matching federated identity record found for presented assertion issuer '${iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
        { aadsts: 'AADSTS700211' },
      );
    }
    const bySubject = byIssuer.filter((f) => f.subject === sub);
    if (bySubject.length === 0) {
      if (byIssuer.some((f) => f.subject.toLowerCase() === sub.toLowerCase())) {
        throw new HttpError(
          400,
          'invalid_client',
          `AADSTS7002138: No matching federated identity record found for presented assertion subject '${sub}'. The subject matches a federated identity credential only when compared case-insensitively; subjects are case-sensitive.`,
          { aadsts: 'AADSTS7002138' },
        );
      }
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS700213: No matching federated identity record found for presented assertion subject '${sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
        { aadsts: 'AADSTS700213' },
      );
    }
    if (!bySubject.some((f) => f.audiences.some((a) => auds.includes(a)))) {
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS700212: No matching federated identity record found for presented assertion audience '${auds.join(',')}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
        { aadsts: 'AADSTS700212' },
      );
    }
    const jwks = await this.issuerJwks(iss);
    try {
      // Time is checked separately below so an expired token gets Entra's own message.
      await jwtVerify(assertion, jwks, { currentDate: new Date(((claims.iat ?? claims.nbf ?? 0) + 1) * 1000) });
    } catch {
      throw new HttpError(401, 'invalid_client', 'AADSTS700027: Client assertion contains an invalid signature.', {
        aadsts: 'AADSTS700027',
      });
    }
    const now = Math.floor(Date.now() / 1000);
    if (
      (claims.exp !== undefined && claims.exp + CLOCK_SKEW_S < now) ||
      (claims.nbf !== undefined && claims.nbf - CLOCK_SKEW_S > now)
    ) {
      const iso = (s: number | undefined) => (s === undefined ? 'n/a' : new Date(s * 1000).toISOString());
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS700024: Client assertion is not within its valid time range. Current time: ${iso(now)}, assertion valid from ${iso(claims.nbf ?? claims.iat)}, expiry time of assertion ${iso(claims.exp)}.`,
        { aadsts: 'AADSTS700024' },
      );
    }
  }

  /** The issuer's keys, found the way Entra finds them: OIDC discovery, then jwks_uri. */
  private async issuerJwks(issuer: string): Promise<ReturnType<typeof createLocalJWKSet>> {
    const cached = this.issuerKeys.get(issuer);
    if (cached && Date.now() - cached.fetched < 60_000) return cached.jwks;
    try {
      const config = (await httpsGetJson(
        `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
        this.opts.issuerCa,
      )) as { issuer?: string; jwks_uri?: string };
      if (config.issuer !== issuer || !config.jwks_uri)
        throw new Error(`discovery document names issuer '${config.issuer}'`);
      const jwks = createLocalJWKSet((await httpsGetJson(config.jwks_uri, this.opts.issuerCa)) as JSONWebKeySet);
      this.issuerKeys.set(issuer, { jwks, fetched: Date.now() });
      return jwks;
    } catch (err) {
      throw new HttpError(
        400,
        'invalid_client',
        `AADSTS50166: Request to External OIDC endpoint failed. (${(err as Error).message})`,
        { aadsts: 'AADSTS50166' },
      );
    }
  }
}

const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';

function imdsError(error: string, description: string) {
  return { error, error_description: description };
}

/**
 * An injected fault's body on the IMDS port. The SDK decides on the status alone (404 and 410 are
 * retried, see @azure/identity's imdsRetryPolicy); the spec's error codes name them.
 */
function imdsFaultBody(status: number) {
  const error =
    status === 404
      ? 'not_found'
      : status === 429
        ? 'too_many_requests'
        : status === 410 || status === 503
          ? 'service_unavailable'
          : status >= 500
            ? 'server_error'
            : 'bad_request';
  return imdsError(error, STATUS_CODES[status] ?? String(status));
}

/** The OpenID Connect scopes (msal-common's OIDC_SCOPES: openid, profile, offline_access, email). */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/**
 * The resource a client-credentials request asks for. Entra takes exactly one `<resource>/.default`
 * and accepts the OIDC scopes next to it: MSAL for Go appends "openid offline_access profile" to
 * every token request, client credentials included (microsoft-authentication-library-for-go,
 * apps/internal/oauth/ops/accesstokens/accesstokens.go, addScopeQueryParam), and works against
 * Entra. They change nothing here: no user, so no ID or refresh token; `.default` picks the audience.
 */
function clientCredentialsResource(scope: string): string {
  const scopes = scope.split(' ').filter(Boolean);
  const defaults = scopes.filter((s) => s.endsWith('/.default'));
  if (defaults.length > 1) {
    // Two resources in one request: the body real Entra sends (Azure/azure-sdk-for-net#9076,
    // AzureAD/microsoft-authentication-library-for-js#6069).
    throw new HttpError(
      400,
      'invalid_scope',
      `AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
      { aadsts: 'AADSTS70011' },
    );
  }
  if (defaults.length === 0 || scopes.some((s) => !s.endsWith('/.default') && !OIDC_SCOPES.has(s))) {
    // No `.default` (even "openid" alone) is AADSTS1002012 (MicrosoftDocs/azure-docs#99862,
    // ctron/oidc-cli#7). For a delegated scope beside a `.default` no real response was found, so it
    // gets the same refusal rather than an invented one.
    throw new HttpError(
      400,
      'invalid_scope',
      `AADSTS1002012: The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      { aadsts: 'AADSTS1002012' },
    );
  }
  return defaults[0]!.slice(0, -'/.default'.length);
}

/** A client-credentials token request, as the stats record it. */
function tokenRecord(tenant: string, form: URLSearchParams, outcome: string): TokenRecord {
  return {
    at: Date.now(),
    tenant,
    clientId: form.get('client_id') ?? '',
    grant: form.has('client_secret') ? 'client_secret' : 'client_assertion',
    outcome,
  };
}

/**
 * Entra's error body, as the sample response in its error reference shows it
 * (learn.microsoft.com/entra/identity-platform/reference-error-codes, "Handling error codes in your
 * application"): the description starts with the AADSTS code and ends with the trace id, the
 * correlation id and the time, each on a line of its own.
 */
function aadError(error: string, code: string, description: string) {
  const numeric = Number(/AADSTS(\d+)/.exec(code || description)?.[1] ?? 0);
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const [traceId, correlationId] = [randomUUID(), randomUUID()];
  const text = code && !description.startsWith(code) ? `${code}: ${description}` : description;
  return {
    error,
    error_description: `${text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: numeric ? [numeric] : [],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    ...(numeric ? { error_uri: `https://login.microsoftonline.com/error?code=${numeric}` } : {}),
  };
}
