#!/bin/sh
# Regenerates the fixture keystores (run once; the committed bytes are what tests load).
# Password of every store and key: changeit. Keys are 2048-bit RSA (genrsa's PKCS#8).
set -e
cd "$(dirname "$0")"
T=$(mktemp -d)
S="/C=US/O=AcmeXYZ"
openssl genrsa -out $T/ca.key 2048 2>/dev/null
openssl req -x509 -new -sha256 -key $T/ca.key -subj "$S/CN=Fixture CA" -days 36500 -out ca.crt
openssl genrsa -out $T/kmsServer.key 2048 2>/dev/null
openssl req -new -sha256 -key $T/kmsServer.key -subj "$S/CN=kmsServer.AcmeXYZ.com" -out $T/kmsServer.csr
openssl x509 -req -in $T/kmsServer.csr -CA ca.crt -CAkey $T/ca.key -CAcreateserial -CAserial $T/ca.srl -days 36500 -sha256 -out kmsServer.crt 2>/dev/null
openssl genrsa -out $T/cmxDevice.key 2048 2>/dev/null
openssl req -new -sha256 -key $T/cmxDevice.key -subj "$S/CN=cmxDevice.AcmeXYZ.com" -out $T/cmxDevice.csr
openssl x509 -req -in $T/cmxDevice.csr -CA ca.crt -CAkey $T/ca.key -CAserial $T/ca.srl -days 36500 -sha256 -out cmxDevice.crt 2>/dev/null
cat kmsServer.crt ca.crt > $T/chain.crt
openssl pkcs12 -export -inkey $T/kmsServer.key -in $T/chain.crt -name kmsServer -out $T/kmsServer.p12 -passout pass:changeit
openssl pkcs12 -export -legacy -inkey $T/kmsServer.key -in $T/chain.crt -name kmsServer -out legacy-openssl.p12 -passout pass:changeit
rm -f store.p12 store.jks
for f in p12:PKCS12 jks:JKS; do
  ext=${f%%:*}; type=${f##*:}
  keytool -importkeystore -srckeystore $T/kmsServer.p12 -srcstoretype PKCS12 -srcstorepass changeit \
    -alias kmsServer -destkeystore store.$ext -deststoretype $type -deststorepass changeit -destkeypass changeit -noprompt
  keytool -import -trustcacerts -noprompt -alias cmxDevice -file cmxDevice.crt -keystore store.$ext -storepass changeit
done
openssl pkcs12 -in store.p12 -nodes -passin pass:changeit -out store.pem 2>/dev/null
openssl x509 -in kmsServer.crt -noout -modulus | sed 's/Modulus=//' > kmsServer.modulus
rm -rf $T
