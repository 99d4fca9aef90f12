/*
 * devicegate OpenVPN plugin: decides OPENVPN_PLUGIN_TLS_VERIFY for the client certificate inside the OpenVPN
 * process.
 *
 * Why a plugin: OpenVPN applies a *deferred* auth result (management client-auth, deferred scripts and plugins) only
 * on its next one-second timer tick, and a script hook costs process starts on every connect. A synchronous
 * tls-verify plugin costs neither: a cached answer is a file read, a miss is one HTTP request over a kept-alive
 * connection, both inside the TLS handshake.
 *
 * Same protocol and cache as docker/openvpn/devicegate-tls-verify.sh (one file per certificate fingerprint holding
 * "<allow|deny> <expires-epoch-seconds>"), so the two can share a cache directory. Fail closed: anything but a
 * complete allow answer from devicegate within the deadline is a deny.
 *
 * server.conf:
 *   plugin /usr/local/lib/devicegate/devicegate-openvpn-plugin.so "url=https://devicegate.example:8443"
 *     "token_file=/etc/devicegate/openvpn-token" "gateway_id=ovpn-gw-01" "cache_dir=/run/devicegate-ovpn-cache"
 *   (one line; optional: "timeout_ms=1000" "cache_max_seconds=60" "ca_file=/etc/devicegate/ca.pem")
 *
 * Build: cc -O2 -Wall -Wextra -fPIC -shared -o devicegate-openvpn-plugin.so devicegate-openvpn-plugin.c -lcurl
 * (headers: openvpn's openvpn-plugin.h, libcurl4-openssl-dev). See scripts/build-openvpn-plugin.sh.
 */
/* explicit_bzero */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <openvpn/openvpn-plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PLUGIN_NAME "devicegate"
/* An answer of devicegate is a few hundred bytes; anything longer is not one (deny). */
#define MAX_RESPONSE 8192
#define DENY_CACHE_SECONDS 5

struct settings {
    char url[512];
    char token_file[512];
    char gateway_id[64];
    char cache_dir[512];
    char ca_file[512];
    long timeout_ms;
    long cache_max_seconds;
};

struct context {
    struct settings s;
    plugin_log_t log;
    /* Reused across calls: OpenVPN runs plugins on its one thread, and a kept-alive connection saves the TCP (and
     * TLS) handshake on every miss. */
    CURL *curl;
};

struct buffer {
    char data[MAX_RESPONSE + 1];
    size_t len;
    int overflow;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->overflow || n > MAX_RESPONSE - b->len) {
        b->overflow = 1;
        return 0; /* aborts the transfer: deny */
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static const char *env_get(const char *envp[], const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=') return envp[i] + n + 1;
    }
    return NULL;
}

static int all_chars(const char *s, const char *allowed)
{
    if (!s || !*s) return 0;
    for (; *s; s++) {
        if (!strchr(allowed, *s)) return 0;
    }
    return 1;
}

static int copy_setting(char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= cap) return 0;
    memcpy(dst, value, n + 1);
    return 1;
}

/* Plain http only to loopback: the concentrator token must not cross a network in clear text. */
static int url_allowed(const char *url)
{
    if (strncmp(url, "https://", 8) == 0) return 1;
    static const char *const loopback[] = {"http://127.0.0.1:", "http://127.0.0.1/", "http://[::1]:", "http://[::1]/",
                                           "http://localhost:", "http://localhost/"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        if (strncmp(url, loopback[i], strlen(loopback[i])) == 0) return 1;
    }
    return 0;
}

static int parse_settings(struct settings *s, const char **argv, plugin_log_t log)
{
    memset(s, 0, sizeof *s);
    snprintf(s->gateway_id, sizeof s->gateway_id, "openvpn");
    s->timeout_ms = 1000;
    s->cache_max_seconds = 60;
    int ok = 1;
    /* argv[0] is the plugin path. */
    for (int i = 1; argv && argv[i]; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (!eq) {
            log(PLOG_ERR, PLUGIN_NAME, "argument '%s' is not key=value", a);
            ok = 0;
            continue;
        }
        size_t klen = (size_t)(eq - a);
        const char *v = eq + 1;
        int good = 1;
        if (klen == 3 && strncmp(a, "url", 3) == 0) {
            good = copy_setting(s->url, sizeof s->url, v);
            while (good && strlen(s->url) > 0 && s->url[strlen(s->url) - 1] == '/') s->url[strlen(s->url) - 1] = '\0';
        } else if (klen == 10 && strncmp(a, "token_file", 10) == 0) {
            good = copy_setting(s->token_file, sizeof s->token_file, v);
        } else if (klen == 10 && strncmp(a, "gateway_id", 10) == 0) {
            good = copy_setting(s->gateway_id, sizeof s->gateway_id, v) &&
                   all_chars(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
        } else if (klen == 9 && strncmp(a, "cache_dir", 9) == 0) {
            good = copy_setting(s->cache_dir, sizeof s->cache_dir, v);
        } else if (klen == 7 && strncmp(a, "ca_file", 7) == 0) {
            good = copy_setting(s->ca_file, sizeof s->ca_file, v);
        } else if (klen == 10 && strncmp(a, "timeout_ms", 10) == 0) {
            char *end;
            s->timeout_ms = strtol(v, &end, 10);
            good = *v && !*end && s->timeout_ms >= 50 && s->timeout_ms <= 30000;
        } else if (klen == 17 && strncmp(a, "cache_max_seconds", 17) == 0) {
            char *end;
            s->cache_max_seconds = strtol(v, &end, 10);
            good = *v && !*end && s->cache_max_seconds >= 0 && s->cache_max_seconds <= 86400;
        } else {
            log(PLOG_ERR, PLUGIN_NAME, "unknown setting '%.*s'", (int)klen, a);
            good = 0;
        }
        if (!good) {
            log(PLOG_ERR, PLUGIN_NAME, "invalid value for '%.*s'", (int)klen, a);
            ok = 0;
        }
    }
    if (!s->url[0] || !s->token_file[0]) {
        log(PLOG_ERR, PLUGIN_NAME, "url= and token_file= are required");
        ok = 0;
    } else if (!url_allowed(s->url)) {
        log(PLOG_ERR, PLUGIN_NAME, "url must be https:// (plain http only to loopback)");
        ok = 0;
    }
    return ok;
}

/* tls_digest_sha256_0 is lower-case colon hex; the cache and the API use the 64 hex digits. */
static int fingerprint_from_env(const char *envp[], char out[65])
{
    const char *d = env_get(envp, "tls_digest_sha256_0");
    if (!d) return 0;
    size_t n = 0;
    for (; *d; d++) {
        if (*d == ':') continue;
        if (!isxdigit((unsigned char)*d) || n >= 64) return 0;
        out[n++] = (char)tolower((unsigned char)*d);
    }
    out[n] = '\0';
    return n == 64;
}

/* 1 allow, 0 deny, -1 no usable entry. */
static int cache_lookup(const struct settings *s, const char *fp, time_t now)
{
    if (!s->cache_dir[0]) return -1;
    char path[640];
    snprintf(path, sizeof path, "%s/%s", s->cache_dir, fp);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char verdict[8] = {0};
    long long expires = 0;
    int n = fscanf(f, "%7s %lld", verdict, &expires);
    fclose(f);
    if (n != 2 || expires <= (long long)now) return -1;
    if (strcmp(verdict, "allow") == 0) return 1;
    if (strcmp(verdict, "deny") == 0) return 0;
    return -1;
}

static void cache_store(const struct settings *s, const char *fp, int allow, long ttl, time_t now)
{
    if (!s->cache_dir[0] || ttl <= 0) return;
    char path[640], tmp[700];
    snprintf(path, sizeof path, "%s/%s", s->cache_dir, fp);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int ok = fprintf(f, "%s %lld\n", allow ? "allow" : "deny", (long long)now + ttl) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: a reader sees the old entry or the new one, never half of one. */
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

static int read_token(const char *file, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = '\0';
    /* A token is printable ASCII without spaces; anything else would corrupt the header. */
    for (size_t i = 0; i < n; i++) {
        if (out[i] <= ' ' || out[i] > '~') return 0;
    }
    return n > 0;
}

/* n characters of a lower-case UUID (hex digits and '-') at p. */
static int uuid_at(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(isdigit((unsigned char)p[i]) || (p[i] >= 'a' && p[i] <= 'f') || p[i] == '-')) return 0;
    }
    return 1;
}

/*
 * An allow is exactly the shape devicegate sends (src/concentrator/response.ts): one JSON object that starts with
 * the decision, the decision id, the device id and reason OK, ends with '}', and holds no newline. Anything else
 * (truncated, garbled, reordered, a deny) is not an allow. The ttl comes from "ttl_seconds".
 */
static int is_allow(const char *body, size_t len, long *ttl)
{
    static const char p1[] = "{\"decision\":\"allow\",\"decision_id\":\"";
    static const char p2[] = "\",\"device_id\":\"";
    static const char p3[] = "\",\"reason_code\":\"OK\",";
    const size_t l1 = sizeof p1 - 1, l2 = sizeof p2 - 1, l3 = sizeof p3 - 1;
    if (len < l1 + 36 + l2 + 36 + l3 + 1) return 0;
    const char *p = body;
    if (memcmp(p, p1, l1) != 0 || !uuid_at(p + l1, 36)) return 0;
    p += l1 + 36;
    if (memcmp(p, p2, l2) != 0 || !uuid_at(p + l2, 36)) return 0;
    p += l2 + 36;
    if (memcmp(p, p3, l3) != 0) return 0;
    if (body[len - 1] != '}' || memchr(body, '\n', len) != NULL || strlen(body) != len) return 0;
    *ttl = 0;
    const char *t = strstr(body, "\"ttl_seconds\":");
    if (t) *ttl = strtol(t + strlen("\"ttl_seconds\":"), NULL, 10);
    if (*ttl < 0) *ttl = 0;
    return 1;
}

/* 1 allow, 0 deny answered by devicegate, -1 no usable answer (also a deny, but not cached: an outage must not
 * outlast itself). */
static int ask_devicegate(struct context *c, const char *fp, const char *serial, const char *ip, long *ttl)
{
    char token[1024];
    if (!read_token(c->s.token_file, token, sizeof token)) {
        c->log(PLOG_ERR, PLUGIN_NAME, "cannot read a token from %s: deny", c->s.token_file);
        return -1;
    }
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"gateway\":{\"id\":\"%s\",\"kind\":\"openvpn\",\"hook\":\"tls-verify\"},\"event\":\"connect\","
                     "\"cert\":{\"sha256\":\"%s\"%s%s%s}%s%s%s}",
                     c->s.gateway_id, fp, serial ? ",\"serial\":{\"dec\":\"" : "", serial ? serial : "",
                     serial ? "\"}" : "", ip ? ",\"peer\":{\"ip\":\"" : "", ip ? ip : "", ip ? "\"}" : "");
    if (n < 0 || (size_t)n >= sizeof body) return -1;
    char auth[1100], endpoint[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(endpoint, sizeof endpoint, "%s/v1/decisions", c->s.url);

    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    struct buffer resp = {.len = 0, .overflow = 0};
    resp.data[0] = '\0';
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, endpoint);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->s.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->s.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->s.ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->s.ca_file);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    /* The token does not outlive the request in our memory (core dumps, swap). */
    explicit_bzero(token, sizeof token);
    explicit_bzero(auth, sizeof auth);
    if (c->log && rc != CURLE_OK) c->log(PLOG_WARN, PLUGIN_NAME, "devicegate not reached (%s): deny", curl_easy_strerror(rc));
    if (rc != CURLE_OK || resp.overflow) return -1;
    if (status != 200) {
        c->log(PLOG_WARN, PLUGIN_NAME, "devicegate answered HTTP %ld: deny", status);
        return -1;
    }
    if (is_allow(resp.data, resp.len, ttl)) return 1;
    const char *reason = strstr(resp.data, "\"reason_code\":\"");
    int rlen = 0;
    if (reason) {
        reason += strlen("\"reason_code\":\"");
        while (rlen < 40 && (isupper((unsigned char)reason[rlen]) || reason[rlen] == '_')) rlen++;
    }
    c->log(PLOG_NOTE, PLUGIN_NAME, "devicegate: deny (%.*s)", rlen, rlen ? reason : "no usable answer");
    static const char deny_prefix[] = "{\"decision\":\"deny\",";
    return strncmp(resp.data, deny_prefix, sizeof deny_prefix - 1) == 0 ? 0 : -1;
}

OPENVPN_EXPORT int openvpn_plugin_open_v3(const int version, struct openvpn_plugin_args_open_in const *args,
                                          struct openvpn_plugin_args_open_return *ret)
{
    if (version < OPENVPN_PLUGINv3_STRUCTVER) return OPENVPN_PLUGIN_FUNC_ERROR;
    struct context *c = calloc(1, sizeof *c);
    if (!c) return OPENVPN_PLUGIN_FUNC_ERROR;
    c->log = args->callbacks->plugin_log;
    if (!parse_settings(&c->s, args->argv, c->log) || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        !(c->curl = curl_easy_init())) {
        free(c);
        return OPENVPN_PLUGIN_FUNC_ERROR;
    }
    ret->type_mask = OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_TLS_VERIFY);
    ret->handle = (openvpn_plugin_handle_t)c;
    c->log(PLOG_NOTE, PLUGIN_NAME, "deciding tls-verify through %s (gateway id %s, timeout %ld ms, cache %s)", c->s.url,
           c->s.gateway_id, c->s.timeout_ms, c->s.cache_dir[0] ? c->s.cache_dir : "off");
    return OPENVPN_PLUGIN_FUNC_SUCCESS;
}

OPENVPN_EXPORT int openvpn_plugin_func_v3(const int version, struct openvpn_plugin_args_func_in const *args,
                                          struct openvpn_plugin_args_func_return *ret)
{
    (void)ret;
    if (version < OPENVPN_PLUGINv3_STRUCTVER || args->type != OPENVPN_PLUGIN_TLS_VERIFY) return OPENVPN_PLUGIN_FUNC_ERROR;
    /* OpenVPN verified the chain itself; the decision is about the client certificate (depth 0). */
    if (args->current_cert_depth != 0) return OPENVPN_PLUGIN_FUNC_SUCCESS;
    struct context *c = (struct context *)args->handle;
    char fp[65];
    if (!fingerprint_from_env(args->envp, fp)) {
        c->log(PLOG_WARN, PLUGIN_NAME, "no usable tls_digest_sha256_0: deny");
        return OPENVPN_PLUGIN_FUNC_ERROR;
    }
    time_t now = time(NULL);
    int cached = cache_lookup(&c->s, fp, now);
    if (cached >= 0) return cached ? OPENVPN_PLUGIN_FUNC_SUCCESS : OPENVPN_PLUGIN_FUNC_ERROR;

    /* Only plain values go into the request; anything else is left out (devicegate then decides on less). */
    const char *serial = env_get(args->envp, "tls_serial_0");
    if (serial && (!all_chars(serial, "0123456789") || strlen(serial) > 64)) serial = NULL;
    const char *ip = env_get(args->envp, "untrusted_ip");
    if (!ip) ip = env_get(args->envp, "untrusted_ip6");
    if (ip && (!all_chars(ip, "0123456789abcdefABCDEF:.") || strlen(ip) > 45)) ip = NULL;

    long ttl = 0;
    int answer = ask_devicegate(c, fp, serial, ip, &ttl);
    if (answer < 0) return OPENVPN_PLUGIN_FUNC_ERROR;
    /* Answered denies are cached briefly so a refused device cannot hammer devicegate; allows up to the cap. */
    if (answer == 0) ttl = DENY_CACHE_SECONDS;
    else if (ttl > c->s.cache_max_seconds) ttl = c->s.cache_max_seconds;
    cache_store(&c->s, fp, answer == 1, ttl, now);
    return answer == 1 ? OPENVPN_PLUGIN_FUNC_SUCCESS : OPENVPN_PLUGIN_FUNC_ERROR;
}

OPENVPN_EXPORT void openvpn_plugin_close_v1(openvpn_plugin_handle_t handle)
{
    struct context *c = (struct context *)handle;
    if (!c) return;
    curl_easy_cleanup(c->curl);
    curl_global_cleanup();
    free(c);
}
