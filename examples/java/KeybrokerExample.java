// Calls keybroker from Java with nothing but the JDK: JSSE for mutual TLS, java.net.http for HTTP.
//
//   javac -d out KeybrokerExample.java
//   KEYBROKER_KEYSTORE_PASSWORD=... java -cp out KeybrokerExample \
//       https://kms.example:8443 cmxBackend.p12 rootCA.crt [TLSv1.3|TLSv1.2]
//
// The .p12 holds this client's private key and certificate (as `openssl pkcs12 -export` or
// keytool makes it); rootCA.crt is the CA that signed the server's certificate. The example
// encrypts a string bound to a context, decrypts it back, and shows that another context is
// refused with the API's error code and request id.
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

public class KeybrokerExample {
    /** An SSLContext presenting the .p12's key and trusting only the given CA file. */
    static SSLContext sslContext(String p12, char[] password, String caPem) throws Exception {
        KeyStore identity = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(p12)) {
            identity.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(identity, password);

        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(caPem)) {
            int i = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("ca" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);

        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    /** One string field of a flat JSON answer (enough for this API's answers). */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: KeybrokerExample URL CLIENT_P12 CA_PEM [TLSv1.3|TLSv1.2]");
            System.exit(2);
        }
        String url = args[0].replaceAll("/+$", "");
        String password = System.getenv("KEYBROKER_KEYSTORE_PASSWORD");
        if (password == null) {
            System.err.println("set KEYBROKER_KEYSTORE_PASSWORD to the .p12 password");
            System.exit(2);
        }
        SSLParameters params = new SSLParameters();
        params.setProtocols(new String[] {args.length > 3 ? args[3] : "TLSv1.3"});
        HttpClient http = HttpClient.newBuilder()
                .sslContext(sslContext(args[1], password.toCharArray(), args[2]))
                .sslParameters(params)
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();

        String context = b64("tenant=7".getBytes(StandardCharsets.UTF_8));
        String plaintext = "hello from java";
        HttpResponse<String> enc = post(http, url + "/v1/keys/default/encrypt",
                "{\"plaintext\":\"" + b64(plaintext.getBytes(StandardCharsets.UTF_8))
                        + "\",\"context\":\"" + context + "\"}");
        System.out.println("tls " + enc.sslSession().map(s -> s.getProtocol()).orElse("none"));
        if (enc.statusCode() != 200) {
            throw new IllegalStateException("encrypt answered " + enc.statusCode() + ": " + enc.body());
        }
        String token = field(enc.body(), "ciphertext");
        System.out.println("encrypt ok " + token);

        HttpResponse<String> dec = post(http, url + "/v1/keys/default/decrypt",
                "{\"ciphertext\":\"" + token + "\",\"context\":\"" + context + "\"}");
        if (dec.statusCode() != 200) {
            throw new IllegalStateException("decrypt answered " + dec.statusCode() + ": " + dec.body());
        }
        String back = new String(Base64.getDecoder().decode(field(dec.body(), "plaintext")), StandardCharsets.UTF_8);
        System.out.println("decrypt ok " + back);

        // Another context: the API refuses it with a code and the request's id.
        HttpResponse<String> bad = post(http, url + "/v1/keys/default/decrypt",
                "{\"ciphertext\":\"" + token + "\",\"context\":\"" + b64("tenant=8".getBytes(StandardCharsets.UTF_8)) + "\"}");
        System.out.println("wrong context refused: " + bad.statusCode() + " " + field(bad.body(), "code")
                + " request_id " + field(bad.body(), "request_id"));
        if (!back.equals(plaintext) || bad.statusCode() != 400) {
            System.exit(1);
        }
    }

    static HttpResponse<String> post(HttpClient http, String url, String json) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build();
        return http.send(req, HttpResponse.BodyHandlers.ofString());
    }
}
