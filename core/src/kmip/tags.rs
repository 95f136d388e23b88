//! KMIP tag names (0x420001–0x4201xx) and names of enumeration values, KMIP 1.0–2.0.
//!
//! The numbers and names are the facts of the OASIS KMIP 1.0–2.0 specifications (section 9.1.3
//! "Defined Values" of 1.x, section 11 of 2.0), cross-checked against PyKMIP's `kmip/core/enums.py`.
//! Names are the spec's names in CamelCase without spaces (`Unique Identifier` →
//! `UniqueIdentifier`); enumeration values keep common acronyms upper-case (`AES`, `GCM`).
//! This file is generated from a table; edit the table, not the lookups, when adding tags.

/// Every known tag as `(number, name)`, sorted by number.
pub static TAGS: &[(u32, &str)] = &[
    (0x420001, "ActivationDate"),
    (0x420002, "ApplicationData"),
    (0x420003, "ApplicationNamespace"),
    (0x420004, "ApplicationSpecificInformation"),
    (0x420005, "ArchiveDate"),
    (0x420006, "AsynchronousCorrelationValue"),
    (0x420007, "AsynchronousIndicator"),
    (0x420008, "Attribute"),
    (0x420009, "AttributeIndex"),
    (0x42000A, "AttributeName"),
    (0x42000B, "AttributeValue"),
    (0x42000C, "Authentication"),
    (0x42000D, "BatchCount"),
    (0x42000E, "BatchErrorContinuationOption"),
    (0x42000F, "BatchItem"),
    (0x420010, "BatchOrderOption"),
    (0x420011, "BlockCipherMode"),
    (0x420012, "CancellationResult"),
    (0x420013, "Certificate"),
    (0x420014, "CertificateIdentifier"),
    (0x420015, "CertificateIssuer"),
    (0x420016, "CertificateIssuerAlternativeName"),
    (0x420017, "CertificateIssuerDistinguishedName"),
    (0x420018, "CertificateRequest"),
    (0x420019, "CertificateRequestType"),
    (0x42001A, "CertificateSubject"),
    (0x42001B, "CertificateSubjectAlternativeName"),
    (0x42001C, "CertificateSubjectDistinguishedName"),
    (0x42001D, "CertificateType"),
    (0x42001E, "CertificateValue"),
    (0x42001F, "CommonTemplateAttribute"),
    (0x420020, "CompromiseDate"),
    (0x420021, "CompromiseOccurrenceDate"),
    (0x420022, "ContactInformation"),
    (0x420023, "Credential"),
    (0x420024, "CredentialType"),
    (0x420025, "CredentialValue"),
    (0x420026, "CriticalityIndicator"),
    (0x420027, "CrtCoefficient"),
    (0x420028, "CryptographicAlgorithm"),
    (0x420029, "CryptographicDomainParameters"),
    (0x42002A, "CryptographicLength"),
    (0x42002B, "CryptographicParameters"),
    (0x42002C, "CryptographicUsageMask"),
    (0x42002D, "CustomAttribute"),
    (0x42002E, "D"),
    (0x42002F, "DeactivationDate"),
    (0x420030, "DerivationData"),
    (0x420031, "DerivationMethod"),
    (0x420032, "DerivationParameters"),
    (0x420033, "DestroyDate"),
    (0x420034, "Digest"),
    (0x420035, "DigestValue"),
    (0x420036, "EncryptionKeyInformation"),
    (0x420037, "G"),
    (0x420038, "HashingAlgorithm"),
    (0x420039, "InitialDate"),
    (0x42003A, "InitializationVector"),
    (0x42003B, "Issuer"),
    (0x42003C, "IterationCount"),
    (0x42003D, "IvCounterNonce"),
    (0x42003E, "J"),
    (0x42003F, "Key"),
    (0x420040, "KeyBlock"),
    (0x420041, "KeyCompressionType"),
    (0x420042, "KeyFormatType"),
    (0x420043, "KeyMaterial"),
    (0x420044, "KeyPartIdentifier"),
    (0x420045, "KeyValue"),
    (0x420046, "KeyWrappingData"),
    (0x420047, "KeyWrappingSpecification"),
    (0x420048, "LastChangeDate"),
    (0x420049, "LeaseTime"),
    (0x42004A, "Link"),
    (0x42004B, "LinkType"),
    (0x42004C, "LinkedObjectIdentifier"),
    (0x42004D, "MacSignature"),
    (0x42004E, "MacSignatureKeyInformation"),
    (0x42004F, "MaximumItems"),
    (0x420050, "MaximumResponseSize"),
    (0x420051, "MessageExtension"),
    (0x420052, "Modulus"),
    (0x420053, "Name"),
    (0x420054, "NameType"),
    (0x420055, "NameValue"),
    (0x420056, "ObjectGroup"),
    (0x420057, "ObjectType"),
    (0x420058, "Offset"),
    (0x420059, "OpaqueDataType"),
    (0x42005A, "OpaqueDataValue"),
    (0x42005B, "OpaqueObject"),
    (0x42005C, "Operation"),
    (0x42005D, "OperationPolicyName"),
    (0x42005E, "P"),
    (0x42005F, "PaddingMethod"),
    (0x420060, "PrimeExponentP"),
    (0x420061, "PrimeExponentQ"),
    (0x420062, "PrimeFieldSize"),
    (0x420063, "PrivateExponent"),
    (0x420064, "PrivateKey"),
    (0x420065, "PrivateKeyTemplateAttribute"),
    (0x420066, "PrivateKeyUniqueIdentifier"),
    (0x420067, "ProcessStartDate"),
    (0x420068, "ProtectStopDate"),
    (0x420069, "ProtocolVersion"),
    (0x42006A, "ProtocolVersionMajor"),
    (0x42006B, "ProtocolVersionMinor"),
    (0x42006C, "PublicExponent"),
    (0x42006D, "PublicKey"),
    (0x42006E, "PublicKeyTemplateAttribute"),
    (0x42006F, "PublicKeyUniqueIdentifier"),
    (0x420070, "PutFunction"),
    (0x420071, "Q"),
    (0x420072, "QString"),
    (0x420073, "Qlength"),
    (0x420074, "QueryFunction"),
    (0x420075, "RecommendedCurve"),
    (0x420076, "ReplacedUniqueIdentifier"),
    (0x420077, "RequestHeader"),
    (0x420078, "RequestMessage"),
    (0x420079, "RequestPayload"),
    (0x42007A, "ResponseHeader"),
    (0x42007B, "ResponseMessage"),
    (0x42007C, "ResponsePayload"),
    (0x42007D, "ResultMessage"),
    (0x42007E, "ResultReason"),
    (0x42007F, "ResultStatus"),
    (0x420080, "RevocationMessage"),
    (0x420081, "RevocationReason"),
    (0x420082, "RevocationReasonCode"),
    (0x420083, "KeyRoleType"),
    (0x420084, "Salt"),
    (0x420085, "SecretData"),
    (0x420086, "SecretDataType"),
    (0x420087, "SerialNumber"),
    (0x420088, "ServerInformation"),
    (0x420089, "SplitKey"),
    (0x42008A, "SplitKeyMethod"),
    (0x42008B, "SplitKeyParts"),
    (0x42008C, "SplitKeyThreshold"),
    (0x42008D, "State"),
    (0x42008E, "StorageStatusMask"),
    (0x42008F, "SymmetricKey"),
    (0x420090, "Template"),
    (0x420091, "TemplateAttribute"),
    (0x420092, "TimeStamp"),
    (0x420093, "UniqueBatchItemId"),
    (0x420094, "UniqueIdentifier"),
    (0x420095, "UsageLimits"),
    (0x420096, "UsageLimitsCount"),
    (0x420097, "UsageLimitsTotal"),
    (0x420098, "UsageLimitsUnit"),
    (0x420099, "Username"),
    (0x42009A, "ValidityDate"),
    (0x42009B, "ValidityIndicator"),
    (0x42009C, "VendorExtension"),
    (0x42009D, "VendorIdentification"),
    (0x42009E, "WrappingMethod"),
    (0x42009F, "X"),
    (0x4200A0, "Y"),
    (0x4200A1, "Password"),
    (0x4200A2, "DeviceIdentifier"),
    (0x4200A3, "EncodingOption"),
    (0x4200A4, "ExtensionInformation"),
    (0x4200A5, "ExtensionName"),
    (0x4200A6, "ExtensionTag"),
    (0x4200A7, "ExtensionType"),
    (0x4200A8, "Fresh"),
    (0x4200A9, "MachineIdentifier"),
    (0x4200AA, "MediaIdentifier"),
    (0x4200AB, "NetworkIdentifier"),
    (0x4200AC, "ObjectGroupMember"),
    (0x4200AD, "CertificateLength"),
    (0x4200AE, "DigitalSignatureAlgorithm"),
    (0x4200AF, "CertificateSerialNumber"),
    (0x4200B0, "DeviceSerialNumber"),
    (0x4200B1, "IssuerAlternativeName"),
    (0x4200B2, "IssuerDistinguishedName"),
    (0x4200B3, "SubjectAlternativeName"),
    (0x4200B4, "SubjectDistinguishedName"),
    (0x4200B5, "X509CertificateIdentifier"),
    (0x4200B6, "X509CertificateIssuer"),
    (0x4200B7, "X509CertificateSubject"),
    (0x4200B8, "KeyValueLocation"),
    (0x4200B9, "KeyValueLocationValue"),
    (0x4200BA, "KeyValueLocationType"),
    (0x4200BB, "KeyValuePresent"),
    (0x4200BC, "OriginalCreationDate"),
    (0x4200BD, "PgpKey"),
    (0x4200BE, "PgpKeyVersion"),
    (0x4200BF, "AlternativeName"),
    (0x4200C0, "AlternativeNameValue"),
    (0x4200C1, "AlternativeNameType"),
    (0x4200C2, "Data"),
    (0x4200C3, "SignatureData"),
    (0x4200C4, "DataLength"),
    (0x4200C5, "RandomIv"),
    (0x4200C6, "MacData"),
    (0x4200C7, "AttestationType"),
    (0x4200C8, "Nonce"),
    (0x4200C9, "NonceId"),
    (0x4200CA, "NonceValue"),
    (0x4200CB, "AttestationMeasurement"),
    (0x4200CC, "AttestationAssertion"),
    (0x4200CD, "IvLength"),
    (0x4200CE, "TagLength"),
    (0x4200CF, "FixedFieldLength"),
    (0x4200D0, "CounterLength"),
    (0x4200D1, "InitialCounterValue"),
    (0x4200D2, "InvocationFieldLength"),
    (0x4200D3, "AttestationCapableIndicator"),
    (0x4200D4, "OffsetItems"),
    (0x4200D5, "LocatedItems"),
    (0x4200D6, "CorrelationValue"),
    (0x4200D7, "InitIndicator"),
    (0x4200D8, "FinalIndicator"),
    (0x4200D9, "RngParameters"),
    (0x4200DA, "RngAlgorithm"),
    (0x4200DB, "DrbgAlgorithm"),
    (0x4200DC, "Fips186Variation"),
    (0x4200DD, "PredictionResistance"),
    (0x4200DE, "RandomNumberGenerator"),
    (0x4200DF, "ValidationInformation"),
    (0x4200E0, "ValidationAuthorityType"),
    (0x4200E1, "ValidationAuthorityCountry"),
    (0x4200E2, "ValidationAuthorityUri"),
    (0x4200E3, "ValidationVersionMajor"),
    (0x4200E4, "ValidationVersionMinor"),
    (0x4200E5, "ValidationType"),
    (0x4200E6, "ValidationLevel"),
    (0x4200E7, "ValidationCertificateIdentifier"),
    (0x4200E8, "ValidationCertificateUri"),
    (0x4200E9, "ValidationVendorUri"),
    (0x4200EA, "ValidationProfile"),
    (0x4200EB, "ProfileInformation"),
    (0x4200EC, "ProfileName"),
    (0x4200ED, "ServerUri"),
    (0x4200EE, "ServerPort"),
    (0x4200EF, "StreamingCapability"),
    (0x4200F0, "AsynchronousCapability"),
    (0x4200F1, "AttestationCapability"),
    (0x4200F2, "UnwrapMode"),
    (0x4200F3, "DestroyAction"),
    (0x4200F4, "ShreddingAlgorithm"),
    (0x4200F5, "RngMode"),
    (0x4200F6, "ClientRegistrationMethod"),
    (0x4200F7, "CapabilityInformation"),
    (0x4200F8, "KeyWrapType"),
    (0x4200F9, "BatchUndoCapability"),
    (0x4200FA, "BatchContinueCapability"),
    (0x4200FB, "Pkcs12FriendlyName"),
    (0x4200FC, "Description"),
    (0x4200FD, "Comment"),
    (0x4200FE, "AuthenticatedEncryptionAdditionalData"),
    (0x4200FF, "AuthenticatedEncryptionTag"),
    (0x420100, "SaltLength"),
    (0x420101, "MaskGenerator"),
    (0x420102, "MaskGeneratorHashingAlgorithm"),
    (0x420103, "PSource"),
    (0x420104, "TrailerField"),
    (0x420105, "ClientCorrelationValue"),
    (0x420106, "ServerCorrelationValue"),
    (0x420107, "DigestedData"),
    (0x420108, "CertificateSubjectCn"),
    (0x420109, "CertificateSubjectO"),
    (0x42010A, "CertificateSubjectOu"),
    (0x42010B, "CertificateSubjectEmail"),
    (0x42010C, "CertificateSubjectC"),
    (0x42010D, "CertificateSubjectSt"),
    (0x42010E, "CertificateSubjectL"),
    (0x42010F, "CertificateSubjectUid"),
    (0x420110, "CertificateSubjectSerialNumber"),
    (0x420111, "CertificateSubjectTitle"),
    (0x420112, "CertificateSubjectDc"),
    (0x420113, "CertificateSubjectDnQualifier"),
    (0x420114, "CertificateIssuerCn"),
    (0x420115, "CertificateIssuerO"),
    (0x420116, "CertificateIssuerOu"),
    (0x420117, "CertificateIssuerEmail"),
    (0x420118, "CertificateIssuerC"),
    (0x420119, "CertificateIssuerSt"),
    (0x42011A, "CertificateIssuerL"),
    (0x42011B, "CertificateIssuerUid"),
    (0x42011C, "CertificateIssuerSerialNumber"),
    (0x42011D, "CertificateIssuerTitle"),
    (0x42011E, "CertificateIssuerDc"),
    (0x42011F, "CertificateIssuerDnQualifier"),
    (0x420120, "Sensitive"),
    (0x420121, "AlwaysSensitive"),
    (0x420122, "Extractable"),
    (0x420123, "NeverExtractable"),
    (0x420124, "ReplaceExisting"),
    (0x420125, "Attributes"),
    (0x420126, "CommonAttributes"),
    (0x420127, "PrivateKeyAttributes"),
    (0x420128, "PublicKeyAttributes"),
    (0x420129, "ExtensionEnumeration"),
    (0x42012A, "ExtensionAttribute"),
    (0x42012B, "ExtensionParentStructureTag"),
    (0x42012C, "ExtensionDescription"),
    (0x42012D, "ServerName"),
    (0x42012E, "ServerSerialNumber"),
    (0x42012F, "ServerVersion"),
    (0x420130, "ServerLoad"),
    (0x420131, "ProductName"),
    (0x420132, "BuildLevel"),
    (0x420133, "BuildDate"),
    (0x420134, "ClusterInfo"),
    (0x420135, "AlternateFailoverEndpoints"),
    (0x420136, "ShortUniqueIdentifier"),
    (0x420137, "Reserved"),
    (0x420138, "Tag"),
    (0x420139, "CertificateRequestUniqueIdentifier"),
    (0x42013A, "NistKeyType"),
    (0x42013B, "AttributeReference"),
    (0x42013C, "CurrentAttribute"),
    (0x42013D, "NewAttribute"),
    (0x420140, "CertificateRequestValue"),
    (0x420141, "LogMessage"),
    (0x420142, "ProfileVersion"),
    (0x420143, "ProfileVersionMajor"),
    (0x420144, "ProfileVersionMinor"),
    (0x420145, "ProtectionLevel"),
    (0x420146, "ProtectionPeriod"),
    (0x420147, "QuantumSafe"),
    (0x420148, "QuantumSafeCapability"),
    (0x420149, "Ticket"),
    (0x42014A, "TicketType"),
    (0x42014B, "TicketValue"),
    (0x42014C, "RequestCount"),
    (0x42014D, "Rights"),
    (0x42014E, "Objects"),
    (0x42014F, "Operations"),
    (0x420150, "Right"),
    (0x420151, "EndpointRole"),
    (0x420152, "DefaultsInformation"),
    (0x420153, "ObjectDefaults"),
    (0x420154, "Ephemeral"),
    (0x420155, "ServerHashedPassword"),
    (0x420156, "OneTimePassword"),
    (0x420157, "HashedPassword"),
    (0x420158, "AdjustmentType"),
    (0x420159, "Pkcs11Interface"),
    (0x42015A, "Pkcs11Function"),
    (0x42015B, "Pkcs11InputParameters"),
    (0x42015C, "Pkcs11OutputParameters"),
    (0x42015D, "Pkcs11ReturnCode"),
    (0x42015E, "ProtectionStorageMask"),
    (0x42015F, "ProtectionStorageMasks"),
    (0x420160, "InteropFunction"),
    (0x420161, "InteropIdentifier"),
    (0x420162, "AdjustmentValue"),
    (0x420163, "CommonProtectionStorageMasks"),
    (0x420164, "PrivateProtectionStorageMasks"),
    (0x420165, "PublicProtectionStorageMasks"),
];

/// Tag numbers as constants, one per known tag.
pub mod tag {
    /// 0x420001 ActivationDate.
    pub const ACTIVATION_DATE: u32 = 0x420001;
    /// 0x420002 ApplicationData.
    pub const APPLICATION_DATA: u32 = 0x420002;
    /// 0x420003 ApplicationNamespace.
    pub const APPLICATION_NAMESPACE: u32 = 0x420003;
    /// 0x420004 ApplicationSpecificInformation.
    pub const APPLICATION_SPECIFIC_INFORMATION: u32 = 0x420004;
    /// 0x420005 ArchiveDate.
    pub const ARCHIVE_DATE: u32 = 0x420005;
    /// 0x420006 AsynchronousCorrelationValue.
    pub const ASYNCHRONOUS_CORRELATION_VALUE: u32 = 0x420006;
    /// 0x420007 AsynchronousIndicator.
    pub const ASYNCHRONOUS_INDICATOR: u32 = 0x420007;
    /// 0x420008 Attribute.
    pub const ATTRIBUTE: u32 = 0x420008;
    /// 0x420009 AttributeIndex.
    pub const ATTRIBUTE_INDEX: u32 = 0x420009;
    /// 0x42000A AttributeName.
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    /// 0x42000B AttributeValue.
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    /// 0x42000C Authentication.
    pub const AUTHENTICATION: u32 = 0x42000C;
    /// 0x42000D BatchCount.
    pub const BATCH_COUNT: u32 = 0x42000D;
    /// 0x42000E BatchErrorContinuationOption.
    pub const BATCH_ERROR_CONTINUATION_OPTION: u32 = 0x42000E;
    /// 0x42000F BatchItem.
    pub const BATCH_ITEM: u32 = 0x42000F;
    /// 0x420010 BatchOrderOption.
    pub const BATCH_ORDER_OPTION: u32 = 0x420010;
    /// 0x420011 BlockCipherMode.
    pub const BLOCK_CIPHER_MODE: u32 = 0x420011;
    /// 0x420012 CancellationResult.
    pub const CANCELLATION_RESULT: u32 = 0x420012;
    /// 0x420013 Certificate.
    pub const CERTIFICATE: u32 = 0x420013;
    /// 0x420014 CertificateIdentifier.
    pub const CERTIFICATE_IDENTIFIER: u32 = 0x420014;
    /// 0x420015 CertificateIssuer.
    pub const CERTIFICATE_ISSUER: u32 = 0x420015;
    /// 0x420016 CertificateIssuerAlternativeName.
    pub const CERTIFICATE_ISSUER_ALTERNATIVE_NAME: u32 = 0x420016;
    /// 0x420017 CertificateIssuerDistinguishedName.
    pub const CERTIFICATE_ISSUER_DISTINGUISHED_NAME: u32 = 0x420017;
    /// 0x420018 CertificateRequest.
    pub const CERTIFICATE_REQUEST: u32 = 0x420018;
    /// 0x420019 CertificateRequestType.
    pub const CERTIFICATE_REQUEST_TYPE: u32 = 0x420019;
    /// 0x42001A CertificateSubject.
    pub const CERTIFICATE_SUBJECT: u32 = 0x42001A;
    /// 0x42001B CertificateSubjectAlternativeName.
    pub const CERTIFICATE_SUBJECT_ALTERNATIVE_NAME: u32 = 0x42001B;
    /// 0x42001C CertificateSubjectDistinguishedName.
    pub const CERTIFICATE_SUBJECT_DISTINGUISHED_NAME: u32 = 0x42001C;
    /// 0x42001D CertificateType.
    pub const CERTIFICATE_TYPE: u32 = 0x42001D;
    /// 0x42001E CertificateValue.
    pub const CERTIFICATE_VALUE: u32 = 0x42001E;
    /// 0x42001F CommonTemplateAttribute.
    pub const COMMON_TEMPLATE_ATTRIBUTE: u32 = 0x42001F;
    /// 0x420020 CompromiseDate.
    pub const COMPROMISE_DATE: u32 = 0x420020;
    /// 0x420021 CompromiseOccurrenceDate.
    pub const COMPROMISE_OCCURRENCE_DATE: u32 = 0x420021;
    /// 0x420022 ContactInformation.
    pub const CONTACT_INFORMATION: u32 = 0x420022;
    /// 0x420023 Credential.
    pub const CREDENTIAL: u32 = 0x420023;
    /// 0x420024 CredentialType.
    pub const CREDENTIAL_TYPE: u32 = 0x420024;
    /// 0x420025 CredentialValue.
    pub const CREDENTIAL_VALUE: u32 = 0x420025;
    /// 0x420026 CriticalityIndicator.
    pub const CRITICALITY_INDICATOR: u32 = 0x420026;
    /// 0x420027 CrtCoefficient.
    pub const CRT_COEFFICIENT: u32 = 0x420027;
    /// 0x420028 CryptographicAlgorithm.
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    /// 0x420029 CryptographicDomainParameters.
    pub const CRYPTOGRAPHIC_DOMAIN_PARAMETERS: u32 = 0x420029;
    /// 0x42002A CryptographicLength.
    pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
    /// 0x42002B CryptographicParameters.
    pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42002B;
    /// 0x42002C CryptographicUsageMask.
    pub const CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x42002C;
    /// 0x42002D CustomAttribute.
    pub const CUSTOM_ATTRIBUTE: u32 = 0x42002D;
    /// 0x42002E D.
    pub const D: u32 = 0x42002E;
    /// 0x42002F DeactivationDate.
    pub const DEACTIVATION_DATE: u32 = 0x42002F;
    /// 0x420030 DerivationData.
    pub const DERIVATION_DATA: u32 = 0x420030;
    /// 0x420031 DerivationMethod.
    pub const DERIVATION_METHOD: u32 = 0x420031;
    /// 0x420032 DerivationParameters.
    pub const DERIVATION_PARAMETERS: u32 = 0x420032;
    /// 0x420033 DestroyDate.
    pub const DESTROY_DATE: u32 = 0x420033;
    /// 0x420034 Digest.
    pub const DIGEST: u32 = 0x420034;
    /// 0x420035 DigestValue.
    pub const DIGEST_VALUE: u32 = 0x420035;
    /// 0x420036 EncryptionKeyInformation.
    pub const ENCRYPTION_KEY_INFORMATION: u32 = 0x420036;
    /// 0x420037 G.
    pub const G: u32 = 0x420037;
    /// 0x420038 HashingAlgorithm.
    pub const HASHING_ALGORITHM: u32 = 0x420038;
    /// 0x420039 InitialDate.
    pub const INITIAL_DATE: u32 = 0x420039;
    /// 0x42003A InitializationVector.
    pub const INITIALIZATION_VECTOR: u32 = 0x42003A;
    /// 0x42003B Issuer.
    pub const ISSUER: u32 = 0x42003B;
    /// 0x42003C IterationCount.
    pub const ITERATION_COUNT: u32 = 0x42003C;
    /// 0x42003D IvCounterNonce.
    pub const IV_COUNTER_NONCE: u32 = 0x42003D;
    /// 0x42003E J.
    pub const J: u32 = 0x42003E;
    /// 0x42003F Key.
    pub const KEY: u32 = 0x42003F;
    /// 0x420040 KeyBlock.
    pub const KEY_BLOCK: u32 = 0x420040;
    /// 0x420041 KeyCompressionType.
    pub const KEY_COMPRESSION_TYPE: u32 = 0x420041;
    /// 0x420042 KeyFormatType.
    pub const KEY_FORMAT_TYPE: u32 = 0x420042;
    /// 0x420043 KeyMaterial.
    pub const KEY_MATERIAL: u32 = 0x420043;
    /// 0x420044 KeyPartIdentifier.
    pub const KEY_PART_IDENTIFIER: u32 = 0x420044;
    /// 0x420045 KeyValue.
    pub const KEY_VALUE: u32 = 0x420045;
    /// 0x420046 KeyWrappingData.
    pub const KEY_WRAPPING_DATA: u32 = 0x420046;
    /// 0x420047 KeyWrappingSpecification.
    pub const KEY_WRAPPING_SPECIFICATION: u32 = 0x420047;
    /// 0x420048 LastChangeDate.
    pub const LAST_CHANGE_DATE: u32 = 0x420048;
    /// 0x420049 LeaseTime.
    pub const LEASE_TIME: u32 = 0x420049;
    /// 0x42004A Link.
    pub const LINK: u32 = 0x42004A;
    /// 0x42004B LinkType.
    pub const LINK_TYPE: u32 = 0x42004B;
    /// 0x42004C LinkedObjectIdentifier.
    pub const LINKED_OBJECT_IDENTIFIER: u32 = 0x42004C;
    /// 0x42004D MacSignature.
    pub const MAC_SIGNATURE: u32 = 0x42004D;
    /// 0x42004E MacSignatureKeyInformation.
    pub const MAC_SIGNATURE_KEY_INFORMATION: u32 = 0x42004E;
    /// 0x42004F MaximumItems.
    pub const MAXIMUM_ITEMS: u32 = 0x42004F;
    /// 0x420050 MaximumResponseSize.
    pub const MAXIMUM_RESPONSE_SIZE: u32 = 0x420050;
    /// 0x420051 MessageExtension.
    pub const MESSAGE_EXTENSION: u32 = 0x420051;
    /// 0x420052 Modulus.
    pub const MODULUS: u32 = 0x420052;
    /// 0x420053 Name.
    pub const NAME: u32 = 0x420053;
    /// 0x420054 NameType.
    pub const NAME_TYPE: u32 = 0x420054;
    /// 0x420055 NameValue.
    pub const NAME_VALUE: u32 = 0x420055;
    /// 0x420056 ObjectGroup.
    pub const OBJECT_GROUP: u32 = 0x420056;
    /// 0x420057 ObjectType.
    pub const OBJECT_TYPE: u32 = 0x420057;
    /// 0x420058 Offset.
    pub const OFFSET: u32 = 0x420058;
    /// 0x420059 OpaqueDataType.
    pub const OPAQUE_DATA_TYPE: u32 = 0x420059;
    /// 0x42005A OpaqueDataValue.
    pub const OPAQUE_DATA_VALUE: u32 = 0x42005A;
    /// 0x42005B OpaqueObject.
    pub const OPAQUE_OBJECT: u32 = 0x42005B;
    /// 0x42005C Operation.
    pub const OPERATION: u32 = 0x42005C;
    /// 0x42005D OperationPolicyName.
    pub const OPERATION_POLICY_NAME: u32 = 0x42005D;
    /// 0x42005E P.
    pub const P: u32 = 0x42005E;
    /// 0x42005F PaddingMethod.
    pub const PADDING_METHOD: u32 = 0x42005F;
    /// 0x420060 PrimeExponentP.
    pub const PRIME_EXPONENT_P: u32 = 0x420060;
    /// 0x420061 PrimeExponentQ.
    pub const PRIME_EXPONENT_Q: u32 = 0x420061;
    /// 0x420062 PrimeFieldSize.
    pub const PRIME_FIELD_SIZE: u32 = 0x420062;
    /// 0x420063 PrivateExponent.
    pub const PRIVATE_EXPONENT: u32 = 0x420063;
    /// 0x420064 PrivateKey.
    pub const PRIVATE_KEY: u32 = 0x420064;
    /// 0x420065 PrivateKeyTemplateAttribute.
    pub const PRIVATE_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x420065;
    /// 0x420066 PrivateKeyUniqueIdentifier.
    pub const PRIVATE_KEY_UNIQUE_IDENTIFIER: u32 = 0x420066;
    /// 0x420067 ProcessStartDate.
    pub const PROCESS_START_DATE: u32 = 0x420067;
    /// 0x420068 ProtectStopDate.
    pub const PROTECT_STOP_DATE: u32 = 0x420068;
    /// 0x420069 ProtocolVersion.
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    /// 0x42006A ProtocolVersionMajor.
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    /// 0x42006B ProtocolVersionMinor.
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    /// 0x42006C PublicExponent.
    pub const PUBLIC_EXPONENT: u32 = 0x42006C;
    /// 0x42006D PublicKey.
    pub const PUBLIC_KEY: u32 = 0x42006D;
    /// 0x42006E PublicKeyTemplateAttribute.
    pub const PUBLIC_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x42006E;
    /// 0x42006F PublicKeyUniqueIdentifier.
    pub const PUBLIC_KEY_UNIQUE_IDENTIFIER: u32 = 0x42006F;
    /// 0x420070 PutFunction.
    pub const PUT_FUNCTION: u32 = 0x420070;
    /// 0x420071 Q.
    pub const Q: u32 = 0x420071;
    /// 0x420072 QString.
    pub const Q_STRING: u32 = 0x420072;
    /// 0x420073 Qlength.
    pub const QLENGTH: u32 = 0x420073;
    /// 0x420074 QueryFunction.
    pub const QUERY_FUNCTION: u32 = 0x420074;
    /// 0x420075 RecommendedCurve.
    pub const RECOMMENDED_CURVE: u32 = 0x420075;
    /// 0x420076 ReplacedUniqueIdentifier.
    pub const REPLACED_UNIQUE_IDENTIFIER: u32 = 0x420076;
    /// 0x420077 RequestHeader.
    pub const REQUEST_HEADER: u32 = 0x420077;
    /// 0x420078 RequestMessage.
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    /// 0x420079 RequestPayload.
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    /// 0x42007A ResponseHeader.
    pub const RESPONSE_HEADER: u32 = 0x42007A;
    /// 0x42007B ResponseMessage.
    pub const RESPONSE_MESSAGE: u32 = 0x42007B;
    /// 0x42007C ResponsePayload.
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    /// 0x42007D ResultMessage.
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    /// 0x42007E ResultReason.
    pub const RESULT_REASON: u32 = 0x42007E;
    /// 0x42007F ResultStatus.
    pub const RESULT_STATUS: u32 = 0x42007F;
    /// 0x420080 RevocationMessage.
    pub const REVOCATION_MESSAGE: u32 = 0x420080;
    /// 0x420081 RevocationReason.
    pub const REVOCATION_REASON: u32 = 0x420081;
    /// 0x420082 RevocationReasonCode.
    pub const REVOCATION_REASON_CODE: u32 = 0x420082;
    /// 0x420083 KeyRoleType.
    pub const KEY_ROLE_TYPE: u32 = 0x420083;
    /// 0x420084 Salt.
    pub const SALT: u32 = 0x420084;
    /// 0x420085 SecretData.
    pub const SECRET_DATA: u32 = 0x420085;
    /// 0x420086 SecretDataType.
    pub const SECRET_DATA_TYPE: u32 = 0x420086;
    /// 0x420087 SerialNumber.
    pub const SERIAL_NUMBER: u32 = 0x420087;
    /// 0x420088 ServerInformation.
    pub const SERVER_INFORMATION: u32 = 0x420088;
    /// 0x420089 SplitKey.
    pub const SPLIT_KEY: u32 = 0x420089;
    /// 0x42008A SplitKeyMethod.
    pub const SPLIT_KEY_METHOD: u32 = 0x42008A;
    /// 0x42008B SplitKeyParts.
    pub const SPLIT_KEY_PARTS: u32 = 0x42008B;
    /// 0x42008C SplitKeyThreshold.
    pub const SPLIT_KEY_THRESHOLD: u32 = 0x42008C;
    /// 0x42008D State.
    pub const STATE: u32 = 0x42008D;
    /// 0x42008E StorageStatusMask.
    pub const STORAGE_STATUS_MASK: u32 = 0x42008E;
    /// 0x42008F SymmetricKey.
    pub const SYMMETRIC_KEY: u32 = 0x42008F;
    /// 0x420090 Template.
    pub const TEMPLATE: u32 = 0x420090;
    /// 0x420091 TemplateAttribute.
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    /// 0x420092 TimeStamp.
    pub const TIME_STAMP: u32 = 0x420092;
    /// 0x420093 UniqueBatchItemId.
    pub const UNIQUE_BATCH_ITEM_ID: u32 = 0x420093;
    /// 0x420094 UniqueIdentifier.
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
    /// 0x420095 UsageLimits.
    pub const USAGE_LIMITS: u32 = 0x420095;
    /// 0x420096 UsageLimitsCount.
    pub const USAGE_LIMITS_COUNT: u32 = 0x420096;
    /// 0x420097 UsageLimitsTotal.
    pub const USAGE_LIMITS_TOTAL: u32 = 0x420097;
    /// 0x420098 UsageLimitsUnit.
    pub const USAGE_LIMITS_UNIT: u32 = 0x420098;
    /// 0x420099 Username.
    pub const USERNAME: u32 = 0x420099;
    /// 0x42009A ValidityDate.
    pub const VALIDITY_DATE: u32 = 0x42009A;
    /// 0x42009B ValidityIndicator.
    pub const VALIDITY_INDICATOR: u32 = 0x42009B;
    /// 0x42009C VendorExtension.
    pub const VENDOR_EXTENSION: u32 = 0x42009C;
    /// 0x42009D VendorIdentification.
    pub const VENDOR_IDENTIFICATION: u32 = 0x42009D;
    /// 0x42009E WrappingMethod.
    pub const WRAPPING_METHOD: u32 = 0x42009E;
    /// 0x42009F X.
    pub const X: u32 = 0x42009F;
    /// 0x4200A0 Y.
    pub const Y: u32 = 0x4200A0;
    /// 0x4200A1 Password.
    pub const PASSWORD: u32 = 0x4200A1;
    /// 0x4200A2 DeviceIdentifier.
    pub const DEVICE_IDENTIFIER: u32 = 0x4200A2;
    /// 0x4200A3 EncodingOption.
    pub const ENCODING_OPTION: u32 = 0x4200A3;
    /// 0x4200A4 ExtensionInformation.
    pub const EXTENSION_INFORMATION: u32 = 0x4200A4;
    /// 0x4200A5 ExtensionName.
    pub const EXTENSION_NAME: u32 = 0x4200A5;
    /// 0x4200A6 ExtensionTag.
    pub const EXTENSION_TAG: u32 = 0x4200A6;
    /// 0x4200A7 ExtensionType.
    pub const EXTENSION_TYPE: u32 = 0x4200A7;
    /// 0x4200A8 Fresh.
    pub const FRESH: u32 = 0x4200A8;
    /// 0x4200A9 MachineIdentifier.
    pub const MACHINE_IDENTIFIER: u32 = 0x4200A9;
    /// 0x4200AA MediaIdentifier.
    pub const MEDIA_IDENTIFIER: u32 = 0x4200AA;
    /// 0x4200AB NetworkIdentifier.
    pub const NETWORK_IDENTIFIER: u32 = 0x4200AB;
    /// 0x4200AC ObjectGroupMember.
    pub const OBJECT_GROUP_MEMBER: u32 = 0x4200AC;
    /// 0x4200AD CertificateLength.
    pub const CERTIFICATE_LENGTH: u32 = 0x4200AD;
    /// 0x4200AE DigitalSignatureAlgorithm.
    pub const DIGITAL_SIGNATURE_ALGORITHM: u32 = 0x4200AE;
    /// 0x4200AF CertificateSerialNumber.
    pub const CERTIFICATE_SERIAL_NUMBER: u32 = 0x4200AF;
    /// 0x4200B0 DeviceSerialNumber.
    pub const DEVICE_SERIAL_NUMBER: u32 = 0x4200B0;
    /// 0x4200B1 IssuerAlternativeName.
    pub const ISSUER_ALTERNATIVE_NAME: u32 = 0x4200B1;
    /// 0x4200B2 IssuerDistinguishedName.
    pub const ISSUER_DISTINGUISHED_NAME: u32 = 0x4200B2;
    /// 0x4200B3 SubjectAlternativeName.
    pub const SUBJECT_ALTERNATIVE_NAME: u32 = 0x4200B3;
    /// 0x4200B4 SubjectDistinguishedName.
    pub const SUBJECT_DISTINGUISHED_NAME: u32 = 0x4200B4;
    /// 0x4200B5 X509CertificateIdentifier.
    pub const X_509_CERTIFICATE_IDENTIFIER: u32 = 0x4200B5;
    /// 0x4200B6 X509CertificateIssuer.
    pub const X_509_CERTIFICATE_ISSUER: u32 = 0x4200B6;
    /// 0x4200B7 X509CertificateSubject.
    pub const X_509_CERTIFICATE_SUBJECT: u32 = 0x4200B7;
    /// 0x4200B8 KeyValueLocation.
    pub const KEY_VALUE_LOCATION: u32 = 0x4200B8;
    /// 0x4200B9 KeyValueLocationValue.
    pub const KEY_VALUE_LOCATION_VALUE: u32 = 0x4200B9;
    /// 0x4200BA KeyValueLocationType.
    pub const KEY_VALUE_LOCATION_TYPE: u32 = 0x4200BA;
    /// 0x4200BB KeyValuePresent.
    pub const KEY_VALUE_PRESENT: u32 = 0x4200BB;
    /// 0x4200BC OriginalCreationDate.
    pub const ORIGINAL_CREATION_DATE: u32 = 0x4200BC;
    /// 0x4200BD PgpKey.
    pub const PGP_KEY: u32 = 0x4200BD;
    /// 0x4200BE PgpKeyVersion.
    pub const PGP_KEY_VERSION: u32 = 0x4200BE;
    /// 0x4200BF AlternativeName.
    pub const ALTERNATIVE_NAME: u32 = 0x4200BF;
    /// 0x4200C0 AlternativeNameValue.
    pub const ALTERNATIVE_NAME_VALUE: u32 = 0x4200C0;
    /// 0x4200C1 AlternativeNameType.
    pub const ALTERNATIVE_NAME_TYPE: u32 = 0x4200C1;
    /// 0x4200C2 Data.
    pub const DATA: u32 = 0x4200C2;
    /// 0x4200C3 SignatureData.
    pub const SIGNATURE_DATA: u32 = 0x4200C3;
    /// 0x4200C4 DataLength.
    pub const DATA_LENGTH: u32 = 0x4200C4;
    /// 0x4200C5 RandomIv.
    pub const RANDOM_IV: u32 = 0x4200C5;
    /// 0x4200C6 MacData.
    pub const MAC_DATA: u32 = 0x4200C6;
    /// 0x4200C7 AttestationType.
    pub const ATTESTATION_TYPE: u32 = 0x4200C7;
    /// 0x4200C8 Nonce.
    pub const NONCE: u32 = 0x4200C8;
    /// 0x4200C9 NonceId.
    pub const NONCE_ID: u32 = 0x4200C9;
    /// 0x4200CA NonceValue.
    pub const NONCE_VALUE: u32 = 0x4200CA;
    /// 0x4200CB AttestationMeasurement.
    pub const ATTESTATION_MEASUREMENT: u32 = 0x4200CB;
    /// 0x4200CC AttestationAssertion.
    pub const ATTESTATION_ASSERTION: u32 = 0x4200CC;
    /// 0x4200CD IvLength.
    pub const IV_LENGTH: u32 = 0x4200CD;
    /// 0x4200CE TagLength.
    pub const TAG_LENGTH: u32 = 0x4200CE;
    /// 0x4200CF FixedFieldLength.
    pub const FIXED_FIELD_LENGTH: u32 = 0x4200CF;
    /// 0x4200D0 CounterLength.
    pub const COUNTER_LENGTH: u32 = 0x4200D0;
    /// 0x4200D1 InitialCounterValue.
    pub const INITIAL_COUNTER_VALUE: u32 = 0x4200D1;
    /// 0x4200D2 InvocationFieldLength.
    pub const INVOCATION_FIELD_LENGTH: u32 = 0x4200D2;
    /// 0x4200D3 AttestationCapableIndicator.
    pub const ATTESTATION_CAPABLE_INDICATOR: u32 = 0x4200D3;
    /// 0x4200D4 OffsetItems.
    pub const OFFSET_ITEMS: u32 = 0x4200D4;
    /// 0x4200D5 LocatedItems.
    pub const LOCATED_ITEMS: u32 = 0x4200D5;
    /// 0x4200D6 CorrelationValue.
    pub const CORRELATION_VALUE: u32 = 0x4200D6;
    /// 0x4200D7 InitIndicator.
    pub const INIT_INDICATOR: u32 = 0x4200D7;
    /// 0x4200D8 FinalIndicator.
    pub const FINAL_INDICATOR: u32 = 0x4200D8;
    /// 0x4200D9 RngParameters.
    pub const RNG_PARAMETERS: u32 = 0x4200D9;
    /// 0x4200DA RngAlgorithm.
    pub const RNG_ALGORITHM: u32 = 0x4200DA;
    /// 0x4200DB DrbgAlgorithm.
    pub const DRBG_ALGORITHM: u32 = 0x4200DB;
    /// 0x4200DC Fips186Variation.
    pub const FIPS186_VARIATION: u32 = 0x4200DC;
    /// 0x4200DD PredictionResistance.
    pub const PREDICTION_RESISTANCE: u32 = 0x4200DD;
    /// 0x4200DE RandomNumberGenerator.
    pub const RANDOM_NUMBER_GENERATOR: u32 = 0x4200DE;
    /// 0x4200DF ValidationInformation.
    pub const VALIDATION_INFORMATION: u32 = 0x4200DF;
    /// 0x4200E0 ValidationAuthorityType.
    pub const VALIDATION_AUTHORITY_TYPE: u32 = 0x4200E0;
    /// 0x4200E1 ValidationAuthorityCountry.
    pub const VALIDATION_AUTHORITY_COUNTRY: u32 = 0x4200E1;
    /// 0x4200E2 ValidationAuthorityUri.
    pub const VALIDATION_AUTHORITY_URI: u32 = 0x4200E2;
    /// 0x4200E3 ValidationVersionMajor.
    pub const VALIDATION_VERSION_MAJOR: u32 = 0x4200E3;
    /// 0x4200E4 ValidationVersionMinor.
    pub const VALIDATION_VERSION_MINOR: u32 = 0x4200E4;
    /// 0x4200E5 ValidationType.
    pub const VALIDATION_TYPE: u32 = 0x4200E5;
    /// 0x4200E6 ValidationLevel.
    pub const VALIDATION_LEVEL: u32 = 0x4200E6;
    /// 0x4200E7 ValidationCertificateIdentifier.
    pub const VALIDATION_CERTIFICATE_IDENTIFIER: u32 = 0x4200E7;
    /// 0x4200E8 ValidationCertificateUri.
    pub const VALIDATION_CERTIFICATE_URI: u32 = 0x4200E8;
    /// 0x4200E9 ValidationVendorUri.
    pub const VALIDATION_VENDOR_URI: u32 = 0x4200E9;
    /// 0x4200EA ValidationProfile.
    pub const VALIDATION_PROFILE: u32 = 0x4200EA;
    /// 0x4200EB ProfileInformation.
    pub const PROFILE_INFORMATION: u32 = 0x4200EB;
    /// 0x4200EC ProfileName.
    pub const PROFILE_NAME: u32 = 0x4200EC;
    /// 0x4200ED ServerUri.
    pub const SERVER_URI: u32 = 0x4200ED;
    /// 0x4200EE ServerPort.
    pub const SERVER_PORT: u32 = 0x4200EE;
    /// 0x4200EF StreamingCapability.
    pub const STREAMING_CAPABILITY: u32 = 0x4200EF;
    /// 0x4200F0 AsynchronousCapability.
    pub const ASYNCHRONOUS_CAPABILITY: u32 = 0x4200F0;
    /// 0x4200F1 AttestationCapability.
    pub const ATTESTATION_CAPABILITY: u32 = 0x4200F1;
    /// 0x4200F2 UnwrapMode.
    pub const UNWRAP_MODE: u32 = 0x4200F2;
    /// 0x4200F3 DestroyAction.
    pub const DESTROY_ACTION: u32 = 0x4200F3;
    /// 0x4200F4 ShreddingAlgorithm.
    pub const SHREDDING_ALGORITHM: u32 = 0x4200F4;
    /// 0x4200F5 RngMode.
    pub const RNG_MODE: u32 = 0x4200F5;
    /// 0x4200F6 ClientRegistrationMethod.
    pub const CLIENT_REGISTRATION_METHOD: u32 = 0x4200F6;
    /// 0x4200F7 CapabilityInformation.
    pub const CAPABILITY_INFORMATION: u32 = 0x4200F7;
    /// 0x4200F8 KeyWrapType.
    pub const KEY_WRAP_TYPE: u32 = 0x4200F8;
    /// 0x4200F9 BatchUndoCapability.
    pub const BATCH_UNDO_CAPABILITY: u32 = 0x4200F9;
    /// 0x4200FA BatchContinueCapability.
    pub const BATCH_CONTINUE_CAPABILITY: u32 = 0x4200FA;
    /// 0x4200FB Pkcs12FriendlyName.
    pub const PKCS12_FRIENDLY_NAME: u32 = 0x4200FB;
    /// 0x4200FC Description.
    pub const DESCRIPTION: u32 = 0x4200FC;
    /// 0x4200FD Comment.
    pub const COMMENT: u32 = 0x4200FD;
    /// 0x4200FE AuthenticatedEncryptionAdditionalData.
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: u32 = 0x4200FE;
    /// 0x4200FF AuthenticatedEncryptionTag.
    pub const AUTHENTICATED_ENCRYPTION_TAG: u32 = 0x4200FF;
    /// 0x420100 SaltLength.
    pub const SALT_LENGTH: u32 = 0x420100;
    /// 0x420101 MaskGenerator.
    pub const MASK_GENERATOR: u32 = 0x420101;
    /// 0x420102 MaskGeneratorHashingAlgorithm.
    pub const MASK_GENERATOR_HASHING_ALGORITHM: u32 = 0x420102;
    /// 0x420103 PSource.
    pub const P_SOURCE: u32 = 0x420103;
    /// 0x420104 TrailerField.
    pub const TRAILER_FIELD: u32 = 0x420104;
    /// 0x420105 ClientCorrelationValue.
    pub const CLIENT_CORRELATION_VALUE: u32 = 0x420105;
    /// 0x420106 ServerCorrelationValue.
    pub const SERVER_CORRELATION_VALUE: u32 = 0x420106;
    /// 0x420107 DigestedData.
    pub const DIGESTED_DATA: u32 = 0x420107;
    /// 0x420108 CertificateSubjectCn.
    pub const CERTIFICATE_SUBJECT_CN: u32 = 0x420108;
    /// 0x420109 CertificateSubjectO.
    pub const CERTIFICATE_SUBJECT_O: u32 = 0x420109;
    /// 0x42010A CertificateSubjectOu.
    pub const CERTIFICATE_SUBJECT_OU: u32 = 0x42010A;
    /// 0x42010B CertificateSubjectEmail.
    pub const CERTIFICATE_SUBJECT_EMAIL: u32 = 0x42010B;
    /// 0x42010C CertificateSubjectC.
    pub const CERTIFICATE_SUBJECT_C: u32 = 0x42010C;
    /// 0x42010D CertificateSubjectSt.
    pub const CERTIFICATE_SUBJECT_ST: u32 = 0x42010D;
    /// 0x42010E CertificateSubjectL.
    pub const CERTIFICATE_SUBJECT_L: u32 = 0x42010E;
    /// 0x42010F CertificateSubjectUid.
    pub const CERTIFICATE_SUBJECT_UID: u32 = 0x42010F;
    /// 0x420110 CertificateSubjectSerialNumber.
    pub const CERTIFICATE_SUBJECT_SERIAL_NUMBER: u32 = 0x420110;
    /// 0x420111 CertificateSubjectTitle.
    pub const CERTIFICATE_SUBJECT_TITLE: u32 = 0x420111;
    /// 0x420112 CertificateSubjectDc.
    pub const CERTIFICATE_SUBJECT_DC: u32 = 0x420112;
    /// 0x420113 CertificateSubjectDnQualifier.
    pub const CERTIFICATE_SUBJECT_DN_QUALIFIER: u32 = 0x420113;
    /// 0x420114 CertificateIssuerCn.
    pub const CERTIFICATE_ISSUER_CN: u32 = 0x420114;
    /// 0x420115 CertificateIssuerO.
    pub const CERTIFICATE_ISSUER_O: u32 = 0x420115;
    /// 0x420116 CertificateIssuerOu.
    pub const CERTIFICATE_ISSUER_OU: u32 = 0x420116;
    /// 0x420117 CertificateIssuerEmail.
    pub const CERTIFICATE_ISSUER_EMAIL: u32 = 0x420117;
    /// 0x420118 CertificateIssuerC.
    pub const CERTIFICATE_ISSUER_C: u32 = 0x420118;
    /// 0x420119 CertificateIssuerSt.
    pub const CERTIFICATE_ISSUER_ST: u32 = 0x420119;
    /// 0x42011A CertificateIssuerL.
    pub const CERTIFICATE_ISSUER_L: u32 = 0x42011A;
    /// 0x42011B CertificateIssuerUid.
    pub const CERTIFICATE_ISSUER_UID: u32 = 0x42011B;
    /// 0x42011C CertificateIssuerSerialNumber.
    pub const CERTIFICATE_ISSUER_SERIAL_NUMBER: u32 = 0x42011C;
    /// 0x42011D CertificateIssuerTitle.
    pub const CERTIFICATE_ISSUER_TITLE: u32 = 0x42011D;
    /// 0x42011E CertificateIssuerDc.
    pub const CERTIFICATE_ISSUER_DC: u32 = 0x42011E;
    /// 0x42011F CertificateIssuerDnQualifier.
    pub const CERTIFICATE_ISSUER_DN_QUALIFIER: u32 = 0x42011F;
    /// 0x420120 Sensitive.
    pub const SENSITIVE: u32 = 0x420120;
    /// 0x420121 AlwaysSensitive.
    pub const ALWAYS_SENSITIVE: u32 = 0x420121;
    /// 0x420122 Extractable.
    pub const EXTRACTABLE: u32 = 0x420122;
    /// 0x420123 NeverExtractable.
    pub const NEVER_EXTRACTABLE: u32 = 0x420123;
    /// 0x420124 ReplaceExisting.
    pub const REPLACE_EXISTING: u32 = 0x420124;
    /// 0x420125 Attributes.
    pub const ATTRIBUTES: u32 = 0x420125;
    /// 0x420126 CommonAttributes.
    pub const COMMON_ATTRIBUTES: u32 = 0x420126;
    /// 0x420127 PrivateKeyAttributes.
    pub const PRIVATE_KEY_ATTRIBUTES: u32 = 0x420127;
    /// 0x420128 PublicKeyAttributes.
    pub const PUBLIC_KEY_ATTRIBUTES: u32 = 0x420128;
    /// 0x420129 ExtensionEnumeration.
    pub const EXTENSION_ENUMERATION: u32 = 0x420129;
    /// 0x42012A ExtensionAttribute.
    pub const EXTENSION_ATTRIBUTE: u32 = 0x42012A;
    /// 0x42012B ExtensionParentStructureTag.
    pub const EXTENSION_PARENT_STRUCTURE_TAG: u32 = 0x42012B;
    /// 0x42012C ExtensionDescription.
    pub const EXTENSION_DESCRIPTION: u32 = 0x42012C;
    /// 0x42012D ServerName.
    pub const SERVER_NAME: u32 = 0x42012D;
    /// 0x42012E ServerSerialNumber.
    pub const SERVER_SERIAL_NUMBER: u32 = 0x42012E;
    /// 0x42012F ServerVersion.
    pub const SERVER_VERSION: u32 = 0x42012F;
    /// 0x420130 ServerLoad.
    pub const SERVER_LOAD: u32 = 0x420130;
    /// 0x420131 ProductName.
    pub const PRODUCT_NAME: u32 = 0x420131;
    /// 0x420132 BuildLevel.
    pub const BUILD_LEVEL: u32 = 0x420132;
    /// 0x420133 BuildDate.
    pub const BUILD_DATE: u32 = 0x420133;
    /// 0x420134 ClusterInfo.
    pub const CLUSTER_INFO: u32 = 0x420134;
    /// 0x420135 AlternateFailoverEndpoints.
    pub const ALTERNATE_FAILOVER_ENDPOINTS: u32 = 0x420135;
    /// 0x420136 ShortUniqueIdentifier.
    pub const SHORT_UNIQUE_IDENTIFIER: u32 = 0x420136;
    /// 0x420137 Reserved.
    pub const RESERVED: u32 = 0x420137;
    /// 0x420138 Tag.
    pub const TAG: u32 = 0x420138;
    /// 0x420139 CertificateRequestUniqueIdentifier.
    pub const CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER: u32 = 0x420139;
    /// 0x42013A NistKeyType.
    pub const NIST_KEY_TYPE: u32 = 0x42013A;
    /// 0x42013B AttributeReference.
    pub const ATTRIBUTE_REFERENCE: u32 = 0x42013B;
    /// 0x42013C CurrentAttribute.
    pub const CURRENT_ATTRIBUTE: u32 = 0x42013C;
    /// 0x42013D NewAttribute.
    pub const NEW_ATTRIBUTE: u32 = 0x42013D;
    /// 0x420140 CertificateRequestValue.
    pub const CERTIFICATE_REQUEST_VALUE: u32 = 0x420140;
    /// 0x420141 LogMessage.
    pub const LOG_MESSAGE: u32 = 0x420141;
    /// 0x420142 ProfileVersion.
    pub const PROFILE_VERSION: u32 = 0x420142;
    /// 0x420143 ProfileVersionMajor.
    pub const PROFILE_VERSION_MAJOR: u32 = 0x420143;
    /// 0x420144 ProfileVersionMinor.
    pub const PROFILE_VERSION_MINOR: u32 = 0x420144;
    /// 0x420145 ProtectionLevel.
    pub const PROTECTION_LEVEL: u32 = 0x420145;
    /// 0x420146 ProtectionPeriod.
    pub const PROTECTION_PERIOD: u32 = 0x420146;
    /// 0x420147 QuantumSafe.
    pub const QUANTUM_SAFE: u32 = 0x420147;
    /// 0x420148 QuantumSafeCapability.
    pub const QUANTUM_SAFE_CAPABILITY: u32 = 0x420148;
    /// 0x420149 Ticket.
    pub const TICKET: u32 = 0x420149;
    /// 0x42014A TicketType.
    pub const TICKET_TYPE: u32 = 0x42014A;
    /// 0x42014B TicketValue.
    pub const TICKET_VALUE: u32 = 0x42014B;
    /// 0x42014C RequestCount.
    pub const REQUEST_COUNT: u32 = 0x42014C;
    /// 0x42014D Rights.
    pub const RIGHTS: u32 = 0x42014D;
    /// 0x42014E Objects.
    pub const OBJECTS: u32 = 0x42014E;
    /// 0x42014F Operations.
    pub const OPERATIONS: u32 = 0x42014F;
    /// 0x420150 Right.
    pub const RIGHT: u32 = 0x420150;
    /// 0x420151 EndpointRole.
    pub const ENDPOINT_ROLE: u32 = 0x420151;
    /// 0x420152 DefaultsInformation.
    pub const DEFAULTS_INFORMATION: u32 = 0x420152;
    /// 0x420153 ObjectDefaults.
    pub const OBJECT_DEFAULTS: u32 = 0x420153;
    /// 0x420154 Ephemeral.
    pub const EPHEMERAL: u32 = 0x420154;
    /// 0x420155 ServerHashedPassword.
    pub const SERVER_HASHED_PASSWORD: u32 = 0x420155;
    /// 0x420156 OneTimePassword.
    pub const ONE_TIME_PASSWORD: u32 = 0x420156;
    /// 0x420157 HashedPassword.
    pub const HASHED_PASSWORD: u32 = 0x420157;
    /// 0x420158 AdjustmentType.
    pub const ADJUSTMENT_TYPE: u32 = 0x420158;
    /// 0x420159 Pkcs11Interface.
    pub const PKCS11_INTERFACE: u32 = 0x420159;
    /// 0x42015A Pkcs11Function.
    pub const PKCS11_FUNCTION: u32 = 0x42015A;
    /// 0x42015B Pkcs11InputParameters.
    pub const PKCS11_INPUT_PARAMETERS: u32 = 0x42015B;
    /// 0x42015C Pkcs11OutputParameters.
    pub const PKCS11_OUTPUT_PARAMETERS: u32 = 0x42015C;
    /// 0x42015D Pkcs11ReturnCode.
    pub const PKCS11_RETURN_CODE: u32 = 0x42015D;
    /// 0x42015E ProtectionStorageMask.
    pub const PROTECTION_STORAGE_MASK: u32 = 0x42015E;
    /// 0x42015F ProtectionStorageMasks.
    pub const PROTECTION_STORAGE_MASKS: u32 = 0x42015F;
    /// 0x420160 InteropFunction.
    pub const INTEROP_FUNCTION: u32 = 0x420160;
    /// 0x420161 InteropIdentifier.
    pub const INTEROP_IDENTIFIER: u32 = 0x420161;
    /// 0x420162 AdjustmentValue.
    pub const ADJUSTMENT_VALUE: u32 = 0x420162;
    /// 0x420163 CommonProtectionStorageMasks.
    pub const COMMON_PROTECTION_STORAGE_MASKS: u32 = 0x420163;
    /// 0x420164 PrivateProtectionStorageMasks.
    pub const PRIVATE_PROTECTION_STORAGE_MASKS: u32 = 0x420164;
    /// 0x420165 PublicProtectionStorageMasks.
    pub const PUBLIC_PROTECTION_STORAGE_MASKS: u32 = 0x420165;
}

/// Names of one enumeration's values.
#[derive(Debug)]
pub struct EnumTable {
    /// The enumeration's name (`Operation`).
    pub name: &'static str,
    /// `(value, name)` pairs, sorted by value.
    pub values: &'static [(u32, &'static str)],
}

/// Values of the AdjustmentType enumeration.
pub static ADJUSTMENT_TYPE: EnumTable = EnumTable {
    name: "AdjustmentType",
    values: &[
        (0x00000001, "Increment"),
        (0x00000002, "Decrement"),
        (0x00000003, "Negate"),
    ],
};

/// Values of the AlternativeNameType enumeration.
pub static ALTERNATIVE_NAME_TYPE: EnumTable = EnumTable {
    name: "AlternativeNameType",
    values: &[
        (0x00000001, "UninterpretedTextString"),
        (0x00000002, "URI"),
        (0x00000003, "ObjectSerialNumber"),
        (0x00000004, "EmailAddress"),
        (0x00000005, "DNSName"),
        (0x00000006, "X500DistinguishedName"),
        (0x00000007, "IPAddress"),
    ],
};

/// Values of the AsynchronousIndicator enumeration.
pub static ASYNCHRONOUS_INDICATOR: EnumTable = EnumTable {
    name: "AsynchronousIndicator",
    values: &[
        (0x00000001, "Mandatory"),
        (0x00000002, "Optional"),
        (0x00000003, "Prohibited"),
    ],
};

/// Values of the AttestationType enumeration.
pub static ATTESTATION_TYPE: EnumTable = EnumTable {
    name: "AttestationType",
    values: &[
        (0x00000001, "TPMQuote"),
        (0x00000002, "TcgIntegrityReport"),
        (0x00000003, "SamlAssertion"),
    ],
};

/// Values of the BatchErrorContinuationOption enumeration.
pub static BATCH_ERROR_CONTINUATION_OPTION: EnumTable = EnumTable {
    name: "BatchErrorContinuationOption",
    values: &[
        (0x00000001, "Continue"),
        (0x00000002, "Stop"),
        (0x00000003, "Undo"),
    ],
};

/// Values of the BlockCipherMode enumeration.
pub static BLOCK_CIPHER_MODE: EnumTable = EnumTable {
    name: "BlockCipherMode",
    values: &[
        (0x00000001, "CBC"),
        (0x00000002, "ECB"),
        (0x00000003, "PCBC"),
        (0x00000004, "CFB"),
        (0x00000005, "OFB"),
        (0x00000006, "CTR"),
        (0x00000007, "CMAC"),
        (0x00000008, "CCM"),
        (0x00000009, "GCM"),
        (0x0000000A, "CBCMAC"),
        (0x0000000B, "XTS"),
        (0x0000000C, "AESKeyWrapPadding"),
        (0x0000000D, "NISTKeyWrap"),
        (0x0000000E, "X9_102AESKW"),
        (0x0000000F, "X9_102TDKW"),
        (0x00000010, "X9_102AKW1"),
        (0x00000011, "X9_102AKW2"),
        (0x00000012, "AEAD"),
    ],
};

/// Values of the CancellationResult enumeration.
pub static CANCELLATION_RESULT: EnumTable = EnumTable {
    name: "CancellationResult",
    values: &[
        (0x00000001, "Canceled"),
        (0x00000002, "UnableToCancel"),
        (0x00000003, "Completed"),
        (0x00000004, "Failed"),
        (0x00000005, "Unavailable"),
    ],
};

/// Values of the CertificateRequestType enumeration.
pub static CERTIFICATE_REQUEST_TYPE: EnumTable = EnumTable {
    name: "CertificateRequestType",
    values: &[
        (0x00000001, "Crmf"),
        (0x00000002, "PKCS10"),
        (0x00000003, "PEM"),
        (0x00000004, "PGP"),
    ],
};

/// Values of the CertificateType enumeration.
pub static CERTIFICATE_TYPE: EnumTable = EnumTable {
    name: "CertificateType",
    values: &[(0x00000001, "X509"), (0x00000002, "PGP")],
};

/// Values of the ClientRegistrationMethod enumeration.
pub static CLIENT_REGISTRATION_METHOD: EnumTable = EnumTable {
    name: "ClientRegistrationMethod",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "ServerPregenerated"),
        (0x00000003, "ServerOnDemand"),
        (0x00000004, "ClientGenerated"),
        (0x00000005, "ClientRegistered"),
    ],
};

/// Values of the CredentialType enumeration.
pub static CREDENTIAL_TYPE: EnumTable = EnumTable {
    name: "CredentialType",
    values: &[
        (0x00000001, "UsernameAndPassword"),
        (0x00000002, "Device"),
        (0x00000003, "Attestation"),
        (0x00000004, "OneTimePassword"),
        (0x00000005, "HashedPassword"),
        (0x00000006, "Ticket"),
    ],
};

/// Values of the CryptographicAlgorithm enumeration.
pub static CRYPTOGRAPHIC_ALGORITHM: EnumTable = EnumTable {
    name: "CryptographicAlgorithm",
    values: &[
        (0x00000001, "DES"),
        (0x00000002, "TripleDES"),
        (0x00000003, "AES"),
        (0x00000004, "RSA"),
        (0x00000005, "DSA"),
        (0x00000006, "ECDSA"),
        (0x00000007, "HMACSHA1"),
        (0x00000008, "HMACSHA224"),
        (0x00000009, "HMACSHA256"),
        (0x0000000A, "HMACSHA384"),
        (0x0000000B, "HMACSHA512"),
        (0x0000000C, "HMACMD5"),
        (0x0000000D, "DH"),
        (0x0000000E, "ECDH"),
        (0x0000000F, "ECMQV"),
        (0x00000010, "Blowfish"),
        (0x00000011, "Camellia"),
        (0x00000012, "CAST5"),
        (0x00000013, "IDEA"),
        (0x00000014, "Mars"),
        (0x00000015, "RC2"),
        (0x00000016, "RC4"),
        (0x00000017, "RC5"),
        (0x00000018, "SKIPJACK"),
        (0x00000019, "Twofish"),
        (0x0000001A, "EC"),
        (0x0000001B, "OneTimePad"),
        (0x0000001C, "CHACHA20"),
        (0x0000001D, "POLY1305"),
        (0x0000001E, "CHACHA20POLY1305"),
        (0x0000001F, "SHA3_224"),
        (0x00000020, "SHA3_256"),
        (0x00000021, "SHA3_384"),
        (0x00000022, "SHA3_512"),
        (0x00000023, "HMACSHA3_224"),
        (0x00000024, "HMACSHA3_256"),
        (0x00000025, "HMACSHA3_384"),
        (0x00000026, "HMACSHA3_512"),
        (0x00000027, "SHAKE128"),
        (0x00000028, "SHAKE256"),
        (0x00000029, "ARIA"),
        (0x0000002A, "Seed"),
        (0x0000002B, "SM2"),
        (0x0000002C, "SM3"),
        (0x0000002D, "SM4"),
        (0x0000002E, "GOSTR34_10_2012"),
        (0x0000002F, "GOSTR34_11_2012"),
        (0x00000030, "GOSTR34_13_2015"),
        (0x00000031, "GOST28147_89"),
        (0x00000032, "Xmss"),
        (0x00000033, "Sphincs256"),
        (0x00000034, "Mceliece"),
        (0x00000035, "Mceliece6960119"),
        (0x00000036, "Mceliece8192128"),
        (0x00000037, "ED25519"),
        (0x00000038, "ED448"),
    ],
};

/// Values of the Data enumeration.
pub static DATA: EnumTable = EnumTable {
    name: "Data",
    values: &[
        (0x00000001, "Decrypt"),
        (0x00000002, "Encrypt"),
        (0x00000003, "Hash"),
        (0x00000004, "MACMACData"),
        (0x00000005, "RNGRetrieve"),
        (0x00000006, "SignSignatureData"),
        (0x00000007, "SignatureVerify"),
    ],
};

/// Values of the DerivationMethod enumeration.
pub static DERIVATION_METHOD: EnumTable = EnumTable {
    name: "DerivationMethod",
    values: &[
        (0x00000001, "PBKDF2"),
        (0x00000002, "Hash"),
        (0x00000003, "HMAC"),
        (0x00000004, "Encrypt"),
        (0x00000005, "NIST800_108C"),
        (0x00000006, "NIST800_108F"),
        (0x00000007, "NIST800_108Dpi"),
        (0x00000008, "AsymmetricKey"),
        (0x00000009, "AwsSignatureVersion4"),
        (0x0000000A, "HKDF"),
    ],
};

/// Values of the DestroyAction enumeration.
pub static DESTROY_ACTION: EnumTable = EnumTable {
    name: "DestroyAction",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "KeyMaterialDeleted"),
        (0x00000003, "KeyMaterialShredded"),
        (0x00000004, "MetadataDeleted"),
        (0x00000005, "MetadataShredded"),
        (0x00000006, "Deleted"),
        (0x00000007, "Shredded"),
    ],
};

/// Values of the DigitalSignatureAlgorithm enumeration.
pub static DIGITAL_SIGNATURE_ALGORITHM: EnumTable = EnumTable {
    name: "DigitalSignatureAlgorithm",
    values: &[
        (0x00000001, "MD2WithRSAEncryption"),
        (0x00000002, "MD5WithRSAEncryption"),
        (0x00000003, "SHA1WithRSAEncryption"),
        (0x00000004, "SHA224WithRSAEncryption"),
        (0x00000005, "SHA256WithRSAEncryption"),
        (0x00000006, "SHA384WithRSAEncryption"),
        (0x00000007, "SHA512WithRSAEncryption"),
        (0x00000008, "RsassaPSS"),
        (0x00000009, "DSAWithSHA1"),
        (0x0000000A, "DSAWithSHA224"),
        (0x0000000B, "DSAWithSHA256"),
        (0x0000000C, "ECDSAWithSHA1"),
        (0x0000000D, "ECDSAWithSHA224"),
        (0x0000000E, "ECDSAWithSHA256"),
        (0x0000000F, "ECDSAWithSHA384"),
        (0x00000010, "ECDSAWithSHA512"),
        (0x00000011, "SHA3_256WithRSAEncryption"),
        (0x00000012, "SHA3_384WithRSAEncryption"),
        (0x00000013, "SHA3_512WithRSAEncryption"),
    ],
};

/// Values of the DrbgAlgorithm enumeration.
pub static DRBG_ALGORITHM: EnumTable = EnumTable {
    name: "DrbgAlgorithm",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "DualEC"),
        (0x00000003, "Hash"),
        (0x00000004, "HMAC"),
        (0x00000005, "CTR"),
    ],
};

/// Values of the EncodingOption enumeration.
pub static ENCODING_OPTION: EnumTable = EnumTable {
    name: "EncodingOption",
    values: &[(0x00000001, "NoEncoding"), (0x00000002, "TtlvEncoding")],
};

/// Values of the EndpointRole enumeration.
pub static ENDPOINT_ROLE: EnumTable = EnumTable {
    name: "EndpointRole",
    values: &[(0x00000001, "Client"), (0x00000002, "Server")],
};

/// Values of the Fips186Variation enumeration.
pub static FIPS186_VARIATION: EnumTable = EnumTable {
    name: "Fips186Variation",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "GpXOriginal"),
        (0x00000003, "GpXChangeNotice"),
        (0x00000004, "XOriginal"),
        (0x00000005, "XChangeNotice"),
        (0x00000006, "KOriginal"),
        (0x00000007, "KChangeNotice"),
    ],
};

/// Values of the HashingAlgorithm enumeration.
pub static HASHING_ALGORITHM: EnumTable = EnumTable {
    name: "HashingAlgorithm",
    values: &[
        (0x00000001, "MD2"),
        (0x00000002, "MD4"),
        (0x00000003, "MD5"),
        (0x00000004, "SHA1"),
        (0x00000005, "SHA224"),
        (0x00000006, "SHA256"),
        (0x00000007, "SHA384"),
        (0x00000008, "SHA512"),
        (0x00000009, "RIPEMD160"),
        (0x0000000A, "Tiger"),
        (0x0000000B, "Whirlpool"),
        (0x0000000C, "SHA512_224"),
        (0x0000000D, "SHA512_256"),
        (0x0000000E, "SHA3_224"),
        (0x0000000F, "SHA3_256"),
        (0x00000010, "SHA3_384"),
        (0x00000011, "SHA3_512"),
    ],
};

/// Values of the InteropFunction enumeration.
pub static INTEROP_FUNCTION: EnumTable = EnumTable {
    name: "InteropFunction",
    values: &[
        (0x00000001, "Begin"),
        (0x00000002, "End"),
        (0x00000003, "Reset"),
    ],
};

/// Values of the KeyCompressionType enumeration.
pub static KEY_COMPRESSION_TYPE: EnumTable = EnumTable {
    name: "KeyCompressionType",
    values: &[
        (0x00000001, "ECPublicKeyTypeUncompressed"),
        (0x00000002, "ECPublicKeyTypeX9_62CompressedPrime"),
        (0x00000003, "ECPublicKeyTypeX9_62CompressedCHAR2"),
        (0x00000004, "ECPublicKeyTypeX9_62Hybrid"),
    ],
};

/// Values of the KeyFormatType enumeration.
pub static KEY_FORMAT_TYPE: EnumTable = EnumTable {
    name: "KeyFormatType",
    values: &[
        (0x00000001, "Raw"),
        (0x00000002, "Opaque"),
        (0x00000003, "PKCS1"),
        (0x00000004, "PKCS8"),
        (0x00000005, "X509"),
        (0x00000006, "ECPrivateKey"),
        (0x00000007, "TransparentSymmetricKey"),
        (0x00000008, "TransparentDSAPrivateKey"),
        (0x00000009, "TransparentDSAPublicKey"),
        (0x0000000A, "TransparentRSAPrivateKey"),
        (0x0000000B, "TransparentRSAPublicKey"),
        (0x0000000C, "TransparentDHPrivateKey"),
        (0x0000000D, "TransparentDHPublicKey"),
        (0x0000000E, "TransparentECDSAPrivateKey"),
        (0x0000000F, "TransparentECDSAPublicKey"),
        (0x00000010, "TransparentECDHPrivateKey"),
        (0x00000011, "TransparentECDHPublicKey"),
        (0x00000012, "TransparentECMQVPrivateKey"),
        (0x00000013, "TransparentECMQVPublicKey"),
        (0x00000014, "TransparentECPrivateKey"),
        (0x00000015, "TransparentECPublicKey"),
        (0x00000016, "PKCS12"),
    ],
};

/// Values of the KeyRoleType enumeration.
pub static KEY_ROLE_TYPE: EnumTable = EnumTable {
    name: "KeyRoleType",
    values: &[
        (0x00000001, "Bdk"),
        (0x00000002, "Cvk"),
        (0x00000003, "DEK"),
        (0x00000004, "Mkac"),
        (0x00000005, "Mksmc"),
        (0x00000006, "Mksmi"),
        (0x00000007, "Mkdac"),
        (0x00000008, "Mkdn"),
        (0x00000009, "Mkcp"),
        (0x0000000A, "Mkoth"),
        (0x0000000B, "KEK"),
        (0x0000000C, "MAC16609"),
        (0x0000000D, "MAC97971"),
        (0x0000000E, "MAC97972"),
        (0x0000000F, "MAC97973"),
        (0x00000010, "MAC97974"),
        (0x00000011, "MAC97975"),
        (0x00000012, "Zpk"),
        (0x00000013, "Pvkibm"),
        (0x00000014, "Pvkpvv"),
        (0x00000015, "Pvkoth"),
        (0x00000016, "Dukpt"),
        (0x00000017, "IV"),
        (0x00000018, "Trkbk"),
    ],
};

/// Values of the KeyValueLocationType enumeration.
pub static KEY_VALUE_LOCATION_TYPE: EnumTable = EnumTable {
    name: "KeyValueLocationType",
    values: &[(0x00000001, "UninterpretedTextString"), (0x00000002, "URI")],
};

/// Values of the KeyWrapType enumeration.
pub static KEY_WRAP_TYPE: EnumTable = EnumTable {
    name: "KeyWrapType",
    values: &[(0x00000001, "NotWrapped"), (0x00000002, "AsRegistered")],
};

/// Values of the LinkType enumeration.
pub static LINK_TYPE: EnumTable = EnumTable {
    name: "LinkType",
    values: &[
        (0x00000101, "CertificateLink"),
        (0x00000102, "PublicKeyLink"),
        (0x00000103, "PrivateKeyLink"),
        (0x00000104, "DerivationBaseObjectLink"),
        (0x00000105, "DerivedKeyLink"),
        (0x00000106, "ReplacementObjectLink"),
        (0x00000107, "ReplacedObjectLink"),
        (0x00000108, "ParentLink"),
        (0x00000109, "ChildLink"),
        (0x0000010A, "PreviousLink"),
        (0x0000010B, "NextLink"),
        (0x0000010C, "PKCS12CertificateLink"),
        (0x0000010D, "PKCS12PasswordLink"),
        (0x0000010E, "WrappingKeyLink"),
    ],
};

/// Values of the MaskGenerator enumeration.
pub static MASK_GENERATOR: EnumTable = EnumTable {
    name: "MaskGenerator",
    values: &[(0x00000001, "MGF1")],
};

/// Values of the NameType enumeration.
pub static NAME_TYPE: EnumTable = EnumTable {
    name: "NameType",
    values: &[(0x00000001, "UninterpretedTextString"), (0x00000002, "URI")],
};

/// Values of the NistKeyType enumeration.
pub static NIST_KEY_TYPE: EnumTable = EnumTable {
    name: "NistKeyType",
    values: &[
        (0x00000001, "PrivateSignatureKey"),
        (0x00000002, "PublicSignatureVerificationKey"),
        (0x00000003, "SymmetricAuthenticationKey"),
        (0x00000004, "PrivateAuthenticationKey"),
        (0x00000005, "PublicAuthenticationKey"),
        (0x00000006, "SymmetricDataEncryptionKey"),
        (0x00000007, "SymmetricKeyWrappingKey"),
        (0x00000008, "SymmetricRandomNumberGenerationKey"),
        (0x00000009, "SymmetricMasterKey"),
        (0x0000000A, "PrivateKeyTransportKey"),
        (0x0000000B, "PublicKeyTransportKey"),
        (0x0000000C, "SymmetricKeyAgreementKey"),
        (0x0000000D, "PrivateStaticKeyAgreementKey"),
        (0x0000000E, "PublicStaticKeyAgreementKey"),
        (0x0000000F, "PrivateEphemeralKeyAgreementKey"),
        (0x00000010, "PublicEphemeralKeyAgreementKey"),
        (0x00000011, "SymmetricAuthorizationKey"),
        (0x00000012, "PrivateAuthorizationKey"),
        (0x00000013, "PublicAuthorizationKey"),
    ],
};

/// Values of the ObjectGroupMember enumeration.
pub static OBJECT_GROUP_MEMBER: EnumTable = EnumTable {
    name: "ObjectGroupMember",
    values: &[
        (0x00000001, "GroupMemberFresh"),
        (0x00000002, "GroupMemberDefault"),
    ],
};

/// Values of the ObjectType enumeration.
pub static OBJECT_TYPE: EnumTable = EnumTable {
    name: "ObjectType",
    values: &[
        (0x00000001, "Certificate"),
        (0x00000002, "SymmetricKey"),
        (0x00000003, "PublicKey"),
        (0x00000004, "PrivateKey"),
        (0x00000005, "SplitKey"),
        (0x00000006, "Template"),
        (0x00000007, "SecretData"),
        (0x00000008, "OpaqueData"),
        (0x00000009, "PGPKey"),
        (0x0000000A, "CertificateRequest"),
    ],
};

/// Values of the OpaqueDataType enumeration.
pub static OPAQUE_DATA_TYPE: EnumTable = EnumTable {
    name: "OpaqueDataType",
    values: &[(0x80000000, "None")],
};

/// Values of the Operation enumeration.
pub static OPERATION: EnumTable = EnumTable {
    name: "Operation",
    values: &[
        (0x00000001, "Create"),
        (0x00000002, "CreateKeyPair"),
        (0x00000003, "Register"),
        (0x00000004, "Rekey"),
        (0x00000005, "DeriveKey"),
        (0x00000006, "Certify"),
        (0x00000007, "Recertify"),
        (0x00000008, "Locate"),
        (0x00000009, "Check"),
        (0x0000000A, "Get"),
        (0x0000000B, "GetAttributes"),
        (0x0000000C, "GetAttributeList"),
        (0x0000000D, "AddAttribute"),
        (0x0000000E, "ModifyAttribute"),
        (0x0000000F, "DeleteAttribute"),
        (0x00000010, "ObtainLease"),
        (0x00000011, "GetUsageAllocation"),
        (0x00000012, "Activate"),
        (0x00000013, "Revoke"),
        (0x00000014, "Destroy"),
        (0x00000015, "Archive"),
        (0x00000016, "Recover"),
        (0x00000017, "Validate"),
        (0x00000018, "Query"),
        (0x00000019, "Cancel"),
        (0x0000001A, "Poll"),
        (0x0000001B, "Notify"),
        (0x0000001C, "Put"),
        (0x0000001D, "RekeyKeyPair"),
        (0x0000001E, "DiscoverVersions"),
        (0x0000001F, "Encrypt"),
        (0x00000020, "Decrypt"),
        (0x00000021, "Sign"),
        (0x00000022, "SignatureVerify"),
        (0x00000023, "MAC"),
        (0x00000024, "MACVerify"),
        (0x00000025, "RNGRetrieve"),
        (0x00000026, "RNGSeed"),
        (0x00000027, "Hash"),
        (0x00000028, "CreateSplitKey"),
        (0x00000029, "JoinSplitKey"),
        (0x0000002A, "Import"),
        (0x0000002B, "Export"),
        (0x0000002C, "Log"),
        (0x0000002D, "Login"),
        (0x0000002E, "Logout"),
        (0x0000002F, "DelegatedLogin"),
        (0x00000030, "AdjustAttribute"),
        (0x00000031, "SetAttribute"),
        (0x00000032, "SetEndpointRole"),
        (0x00000033, "PKCS11"),
        (0x00000034, "Interop"),
        (0x00000035, "Reprovision"),
    ],
};

/// Values of the PaddingMethod enumeration.
pub static PADDING_METHOD: EnumTable = EnumTable {
    name: "PaddingMethod",
    values: &[
        (0x00000001, "None"),
        (0x00000002, "OAEP"),
        (0x00000003, "PKCS5"),
        (0x00000004, "SSL3"),
        (0x00000005, "Zeros"),
        (0x00000006, "ANSIX923"),
        (0x00000007, "Iso10126"),
        (0x00000008, "PKCS1v15"),
        (0x00000009, "X931"),
        (0x0000000A, "PSS"),
    ],
};

/// Values of the ProfileName enumeration.
pub static PROFILE_NAME: EnumTable = EnumTable {
    name: "ProfileName",
    values: &[
        (0x00000001, "BaselineServerBasicKMIPv12"),
        (0x00000002, "BaselineServerTLSv12KMIPv12"),
        (0x00000003, "BaselineClientBasicKMIPv12"),
        (0x00000004, "BaselineClientTLSv12KMIPv12"),
        (0x00000005, "CompleteServerBasicKMIPv12"),
        (0x00000006, "CompleteServerTLSv12KMIPv12"),
        (0x00000007, "TapeLibraryClientKMIPv10"),
        (0x00000008, "TapeLibraryClientKMIPv11"),
        (0x00000009, "TapeLibraryClientKMIPv12"),
        (0x0000000A, "TapeLibraryServerKMIPv10"),
        (0x0000000B, "TapeLibraryServerKMIPv11"),
        (0x0000000C, "TapeLibraryServerKMIPv12"),
        (0x0000000D, "SymmetricKeyLifecycleClientKMIPv10"),
        (0x0000000E, "SymmetricKeyLifecycleClientKMIPv11"),
        (0x0000000F, "SymmetricKeyLifecycleClientKMIPv12"),
        (0x00000010, "SymmetricKeyLifecycleServerKMIPv10"),
        (0x00000011, "SymmetricKeyLifecycleServerKMIPv11"),
        (0x00000012, "SymmetricKeyLifecycleServerKMIPv12"),
        (0x00000013, "AsymmetricKeyLifecycleClientKMIPv10"),
        (0x00000014, "AsymmetricKeyLifecycleClientKMIPv11"),
        (0x00000015, "AsymmetricKeyLifecycleClientKMIPv12"),
        (0x00000016, "AsymmetricKeyLifecycleServerKMIPv10"),
        (0x00000017, "AsymmetricKeyLifecycleServerKMIPv11"),
        (0x00000018, "AsymmetricKeyLifecycleServerKMIPv12"),
        (0x00000019, "BasicCryptographicClientKMIPv12"),
        (0x0000001A, "BasicCryptographicServerKMIPv12"),
        (0x0000001B, "AdvancedCryptographicClientKMIPv12"),
        (0x0000001C, "AdvancedCryptographicServerKMIPv12"),
        (0x0000001D, "RNGCryptographicClientKMIPv12"),
        (0x0000001E, "RNGCryptographicServerKMIPv12"),
        (0x0000001F, "BasicSymmetricKeyFoundryClientKMIPv10"),
        (0x00000020, "IntermediateSymmetricKeyFoundryClientKMIPv10"),
        (0x00000021, "AdvancedSymmetricKeyFoundryClientKMIPv10"),
        (0x00000022, "BasicSymmetricKeyFoundryClientKMIPv11"),
        (0x00000023, "IntermediateSymmetricKeyFoundryClientKMIPv11"),
        (0x00000024, "AdvancedSymmetricKeyFoundryClientKMIPv11"),
        (0x00000025, "BasicSymmetricKeyFoundryClientKMIPv12"),
        (0x00000026, "IntermediateSymmetricKeyFoundryClientKMIPv12"),
        (0x00000027, "AdvancedSymmetricKeyFoundryClientKMIPv12"),
        (0x00000028, "SymmetricKeyFoundryServerKMIPv10"),
        (0x00000029, "SymmetricKeyFoundryServerKMIPv11"),
        (0x0000002A, "SymmetricKeyFoundryServerKMIPv12"),
        (0x0000002B, "OpaqueManagedObjectStoreClientKMIPv10"),
        (0x0000002C, "OpaqueManagedObjectStoreClientKMIPv11"),
        (0x0000002D, "OpaqueManagedObjectStoreClientKMIPv12"),
        (0x0000002E, "OpaqueManagedObjectStoreServerKMIPv10"),
        (0x0000002F, "OpaqueManagedObjectStoreServerKMIPv11"),
        (0x00000030, "OpaqueManagedObjectStoreServerKMIPv12"),
        (0x00000031, "SuiteBMinlos128ClientKMIPv10"),
        (0x00000032, "SuiteBMinlos128ClientKMIPv11"),
        (0x00000033, "SuiteBMinlos128ClientKMIPv12"),
        (0x00000034, "SuiteBMinlos128ServerKMIPv10"),
        (0x00000035, "SuiteBMinlos128ServerKMIPv11"),
        (0x00000036, "SuiteBMinlos128ServerKMIPv12"),
        (0x00000037, "SuiteBMinlos192ClientKMIPv10"),
        (0x00000038, "SuiteBMinlos192ClientKMIPv11"),
        (0x00000039, "SuiteBMinlos192ClientKMIPv12"),
        (0x0000003A, "SuiteBMinlos192ServerKMIPv10"),
        (0x0000003B, "SuiteBMinlos192ServerKMIPv11"),
        (0x0000003C, "SuiteBMinlos192ServerKMIPv12"),
        (
            0x0000003D,
            "StorageArrayWithSelfEncryptingDriveClientKMIPv10",
        ),
        (
            0x0000003E,
            "StorageArrayWithSelfEncryptingDriveClientKMIPv11",
        ),
        (
            0x0000003F,
            "StorageArrayWithSelfEncryptingDriveClientKMIPv12",
        ),
        (
            0x00000040,
            "StorageArrayWithSelfEncryptingDriveServerKMIPv10",
        ),
        (
            0x00000041,
            "StorageArrayWithSelfEncryptingDriveServerKMIPv11",
        ),
        (
            0x00000042,
            "StorageArrayWithSelfEncryptingDriveServerKMIPv12",
        ),
        (0x00000043, "HttpsClientKMIPv10"),
        (0x00000044, "HttpsClientKMIPv11"),
        (0x00000045, "HttpsClientKMIPv12"),
        (0x00000046, "HttpsServerKMIPv10"),
        (0x00000047, "HttpsServerKMIPv11"),
        (0x00000048, "HttpsServerKMIPv12"),
        (0x00000049, "JsonClientKMIPv10"),
        (0x0000004A, "JsonClientKMIPv11"),
        (0x0000004B, "JsonClientKMIPv12"),
        (0x0000004C, "JsonServerKMIPv10"),
        (0x0000004D, "JsonServerKMIPv11"),
        (0x0000004E, "JsonServerKMIPv12"),
        (0x0000004F, "XmlClientKMIPv10"),
        (0x00000050, "XmlClientKMIPv11"),
        (0x00000051, "XmlClientKMIPv12"),
        (0x00000052, "XmlServerKMIPv10"),
        (0x00000053, "XmlServerKMIPv11"),
        (0x00000054, "XmlServerKMIPv12"),
        (0x00000055, "BaselineServerBasicKMIPv13"),
        (0x00000056, "BaselineServerTLSv12KMIPv13"),
        (0x00000057, "BaselineClientBasicKMIPv13"),
        (0x00000058, "BaselineClientTLSv12KMIPv13"),
        (0x00000059, "CompleteServerBasicKMIPv13"),
        (0x0000005A, "CompleteServerTLSv12KMIPv13"),
        (0x0000005B, "TapeLibraryClientKMIPv13"),
        (0x0000005C, "TapeLibraryServerKMIPv13"),
        (0x0000005D, "SymmetricKeyLifecycleClientKMIPv13"),
        (0x0000005E, "SymmetricKeyLifecycleServerKMIPv13"),
        (0x0000005F, "AsymmetricKeyLifecycleClientKMIPv13"),
        (0x00000060, "AsymmetricKeyLifecycleServerKMIPv13"),
        (0x00000061, "BasicCryptographicClientKMIPv13"),
        (0x00000062, "BasicCryptographicServerKMIPv13"),
        (0x00000063, "AdvancedCryptographicClientKMIPv13"),
        (0x00000064, "AdvancedCryptographicServerKMIPv13"),
        (0x00000065, "RNGCryptographicClientKMIPv13"),
        (0x00000066, "RNGCryptographicServerKMIPv13"),
        (0x00000067, "BasicSymmetricKeyFoundryClientKMIPv13"),
        (0x00000068, "IntermediateSymmetricKeyFoundryClientKMIPv13"),
        (0x00000069, "AdvancedSymmetricKeyFoundryClientKMIPv13"),
        (0x0000006A, "SymmetricKeyFoundryServerKMIPv13"),
        (0x0000006B, "OpaqueManagedObjectStoreClientKMIPv13"),
        (0x0000006C, "OpaqueManagedObjectStoreServerKMIPv13"),
        (0x0000006D, "SuiteBMinlos128ClientKMIPv13"),
        (0x0000006E, "SuiteBMinlos128ServerKMIPv13"),
        (0x0000006F, "SuiteBMinlos192ClientKMIPv13"),
        (0x00000070, "SuiteBMinlos192ServerKMIPv13"),
        (
            0x00000071,
            "StorageArrayWithSelfEncryptingDriveClientKMIPv13",
        ),
        (
            0x00000072,
            "StorageArrayWithSelfEncryptingDriveServerKMIPv13",
        ),
        (0x00000073, "HttpsClientKMIPv13"),
        (0x00000074, "HttpsServerKMIPv13"),
        (0x00000075, "JsonClientKMIPv13"),
        (0x00000076, "JsonServerKMIPv13"),
        (0x00000077, "XmlClientKMIPv13"),
        (0x00000078, "XmlServerKMIPv13"),
        (0x00000079, "BaselineServerBasicKMIPv14"),
        (0x0000007A, "BaselineServerTLSv12KMIPv14"),
        (0x0000007B, "BaselineClientBasicKMIPv14"),
        (0x0000007C, "BaselineClientTLSv12KMIPv14"),
        (0x0000007D, "CompleteServerBasicKMIPv14"),
        (0x0000007E, "CompleteServerTLSv12KMIPv14"),
        (0x0000007F, "TapeLibraryClientKMIPv14"),
        (0x00000080, "TapeLibraryServerKMIPv14"),
        (0x00000081, "SymmetricKeyLifecycleClientKMIPv14"),
        (0x00000082, "SymmetricKeyLifecycleServerKMIPv14"),
        (0x00000083, "AsymmetricKeyLifecycleClientKMIPv14"),
        (0x00000084, "AsymmetricKeyLifecycleServerKMIPv14"),
        (0x00000085, "BasicCryptographicClientKMIPv14"),
        (0x00000086, "BasicCryptographicServerKMIPv14"),
        (0x00000087, "AdvancedCryptographicClientKMIPv14"),
        (0x00000088, "AdvancedCryptographicServerKMIPv14"),
        (0x00000089, "RNGCryptographicClientKMIPv14"),
        (0x0000008A, "RNGCryptographicServerKMIPv14"),
        (0x0000008B, "BasicSymmetricKeyFoundryClientKMIPv14"),
        (0x0000008C, "IntermediateSymmetricKeyFoundryClientKMIPv14"),
        (0x0000008D, "AdvancedSymmetricKeyFoundryClientKMIPv14"),
        (0x0000008E, "SymmetricKeyFoundryServerKMIPv14"),
        (0x0000008F, "OpaqueManagedObjectStoreClientKMIPv14"),
        (0x00000090, "OpaqueManagedObjectStoreServerKMIPv14"),
        (0x00000091, "SuiteBMinlos128ClientKMIPv14"),
        (0x00000092, "SuiteBMinlos128ServerKMIPv14"),
        (0x00000093, "SuiteBMinlos192ClientKMIPv14"),
        (0x00000094, "SuiteBMinlos192ServerKMIPv14"),
        (
            0x00000095,
            "StorageArrayWithSelfEncryptingDriveClientKMIPv14",
        ),
        (
            0x00000096,
            "StorageArrayWithSelfEncryptingDriveServerKMIPv14",
        ),
        (0x00000097, "HttpsClientKMIPv14"),
        (0x00000098, "HttpsServerKMIPv14"),
        (0x00000099, "JsonClientKMIPv14"),
        (0x0000009A, "JsonServerKMIPv14"),
        (0x0000009B, "XmlClientKMIPv14"),
        (0x0000009C, "XmlServerKMIPv14"),
        (0x00000104, "CompleteServerBasic"),
        (0x00000105, "CompleteServerTLSv12"),
        (0x00000106, "TapeLibraryClient"),
        (0x00000107, "TapeLibraryServer"),
        (0x00000108, "SymmetricKeyLifecycleClient"),
        (0x00000109, "SymmetricKeyLifecycleServer"),
        (0x0000010A, "AsymmetricKeyLifecycleClient"),
        (0x0000010B, "AsymmetricKeyLifecycleServer"),
        (0x0000010C, "BasicCryptographicClient"),
        (0x0000010D, "BasicCryptographicServer"),
        (0x0000010E, "AdvancedCryptographicClient"),
        (0x0000010F, "AdvancedCryptographicServer"),
        (0x00000110, "RNGCryptographicClient"),
        (0x00000111, "RNGCryptographicServer"),
        (0x00000112, "BasicSymmetricKeyFoundryClient"),
        (0x00000113, "IntermediateSymmetricKeyFoundryClient"),
        (0x00000114, "AdvancedSymmetricKeyFoundryClient"),
        (0x00000115, "SymmetricKeyFoundryServer"),
        (0x00000116, "OpaqueManagedObjectStoreClient"),
        (0x00000117, "OpaqueManagedObjectStoreServer"),
        (0x00000118, "SuiteBMinlos128Client"),
        (0x00000119, "SuiteBMinlos128Server"),
        (0x0000011A, "SuiteBMinlos192Client"),
        (0x0000011B, "SuiteBMinlos192Server"),
        (0x0000011C, "StorageArrayWithSelfEncryptingDriveClient"),
        (0x0000011D, "StorageArrayWithSelfEncryptingDriveServer"),
        (0x0000011E, "HttpsClient"),
        (0x0000011F, "HttpsServer"),
        (0x00000120, "JsonClient"),
        (0x00000121, "JsonServer"),
        (0x00000122, "XmlClient"),
        (0x00000123, "XmlServer"),
        (0x00000124, "AESXTSClient"),
        (0x00000125, "AESXTSServer"),
        (0x00000126, "QuantumSafeClient"),
        (0x00000127, "QuantumSafeServer"),
        (0x00000128, "PKCS11Client"),
        (0x00000129, "PKCS11Server"),
        (0x0000012A, "BaselineClient"),
        (0x0000012B, "BaselineServer"),
        (0x0000012C, "CompleteServer"),
    ],
};

/// Values of the ProtectionLevel enumeration.
pub static PROTECTION_LEVEL: EnumTable = EnumTable {
    name: "ProtectionLevel",
    values: &[(0x00000001, "High"), (0x00000002, "Low")],
};

/// Values of the PutFunction enumeration.
pub static PUT_FUNCTION: EnumTable = EnumTable {
    name: "PutFunction",
    values: &[(0x00000001, "New"), (0x00000002, "Replace")],
};

/// Values of the QueryFunction enumeration.
pub static QUERY_FUNCTION: EnumTable = EnumTable {
    name: "QueryFunction",
    values: &[
        (0x00000001, "QueryOperations"),
        (0x00000002, "QueryObjects"),
        (0x00000003, "QueryServerInformation"),
        (0x00000004, "QueryApplicationNamespaces"),
        (0x00000005, "QueryExtensionList"),
        (0x00000006, "QueryExtensionMap"),
        (0x00000007, "QueryAttestationTypes"),
        (0x00000008, "QueryRngs"),
        (0x00000009, "QueryValidations"),
        (0x0000000A, "QueryProfiles"),
        (0x0000000B, "QueryCapabilities"),
        (0x0000000C, "QueryClientRegistrationMethods"),
        (0x0000000D, "QueryDefaultsInformation"),
        (0x0000000E, "QueryStorageProtectionMasks"),
    ],
};

/// Values of the RecommendedCurve enumeration.
pub static RECOMMENDED_CURVE: EnumTable = EnumTable {
    name: "RecommendedCurve",
    values: &[
        (0x00000001, "P192"),
        (0x00000002, "K163"),
        (0x00000003, "B163"),
        (0x00000004, "P224"),
        (0x00000005, "K233"),
        (0x00000006, "B233"),
        (0x00000007, "P256"),
        (0x00000008, "K283"),
        (0x00000009, "B283"),
        (0x0000000A, "P384"),
        (0x0000000B, "K409"),
        (0x0000000C, "B409"),
        (0x0000000D, "P521"),
        (0x0000000E, "K571"),
        (0x0000000F, "B571"),
        (0x00000010, "Secp112r1"),
        (0x00000011, "Secp112r2"),
        (0x00000012, "Secp128r1"),
        (0x00000013, "Secp128r2"),
        (0x00000014, "Secp160k1"),
        (0x00000015, "Secp160r1"),
        (0x00000016, "Secp160r2"),
        (0x00000017, "Secp191k1"),
        (0x00000018, "Secp224k1"),
        (0x00000019, "Secp256k1"),
        (0x0000001A, "Sect113r1"),
        (0x0000001B, "Sect113r2"),
        (0x0000001C, "Sect131r1"),
        (0x0000001D, "Sect131r2"),
        (0x0000001E, "Sect163r1"),
        (0x0000001F, "Sect193r1"),
        (0x00000020, "Sect193r2"),
        (0x00000021, "Sect239k1"),
        (0x00000022, "Ansix9p192v2"),
        (0x00000023, "Ansix9p192v3"),
        (0x00000024, "Ansix9p239v1"),
        (0x00000025, "Ansix9p239v2"),
        (0x00000026, "Ansix9p239v3"),
        (0x00000027, "Ansix9c2pnb163v1"),
        (0x00000028, "Ansix9c2pnb163v2"),
        (0x00000029, "Ansix9c2pnb163v3"),
        (0x0000002A, "Ansix9c2pnb176v1"),
        (0x0000002B, "Ansix9c2tnb191v1"),
        (0x0000002C, "Ansix9c2tnb191v2"),
        (0x0000002D, "Ansix9c2tnb191v3"),
        (0x0000002E, "Ansix9c2pnb208w1"),
        (0x0000002F, "Ansix9c2tnb239v1"),
        (0x00000030, "Ansix9c2tnb239v2"),
        (0x00000031, "Ansix9c2tnb239v3"),
        (0x00000032, "Ansix9c2pnb272w1"),
        (0x00000033, "Ansix9c2pnb304w1"),
        (0x00000034, "Ansix9c2tnb359v1"),
        (0x00000035, "Ansix9c2pnb368w1"),
        (0x00000036, "Ansix9c2tnb431r1"),
        (0x00000037, "Brainpoolp160r1"),
        (0x00000038, "Brainpoolp160t1"),
        (0x00000039, "Brainpoolp192r1"),
        (0x0000003A, "Brainpoolp192t1"),
        (0x0000003B, "Brainpoolp224r1"),
        (0x0000003C, "Brainpoolp224t1"),
        (0x0000003D, "Brainpoolp256r1"),
        (0x0000003E, "Brainpoolp256t1"),
        (0x0000003F, "Brainpoolp320r1"),
        (0x00000040, "Brainpoolp320t1"),
        (0x00000041, "Brainpoolp384r1"),
        (0x00000042, "Brainpoolp384t1"),
        (0x00000043, "Brainpoolp512r1"),
        (0x00000044, "Brainpoolp512t1"),
        (0x00000045, "Curve25519"),
        (0x00000046, "CURVE448"),
    ],
};

/// Values of the ResultReason enumeration.
pub static RESULT_REASON: EnumTable = EnumTable {
    name: "ResultReason",
    values: &[
        (0x00000001, "ItemNotFound"),
        (0x00000002, "ResponseTooLarge"),
        (0x00000003, "AuthenticationNotSuccessful"),
        (0x00000004, "InvalidMessage"),
        (0x00000005, "OperationNotSupported"),
        (0x00000006, "MissingData"),
        (0x00000007, "InvalidField"),
        (0x00000008, "FeatureNotSupported"),
        (0x00000009, "OperationCanceledByRequester"),
        (0x0000000A, "CryptographicFailure"),
        (0x0000000B, "IllegalOperation"),
        (0x0000000C, "PermissionDenied"),
        (0x0000000D, "ObjectArchived"),
        (0x0000000E, "IndexOutOfBounds"),
        (0x0000000F, "ApplicationNamespaceNotSupported"),
        (0x00000010, "KeyFormatTypeNotSupported"),
        (0x00000011, "KeyCompressionTypeNotSupported"),
        (0x00000012, "EncodingOptionError"),
        (0x00000013, "KeyValueNotPresent"),
        (0x00000014, "AttestationRequired"),
        (0x00000015, "AttestationFailed"),
        (0x00000016, "Sensitive"),
        (0x00000017, "NotExtractable"),
        (0x00000018, "ObjectAlreadyExists"),
        (0x00000019, "InvalidTicket"),
        (0x0000001A, "UsageLimitExceeded"),
        (0x0000001B, "NumericRange"),
        (0x0000001C, "InvalidDataType"),
        (0x0000001D, "ReadOnlyAttribute"),
        (0x0000001E, "MultiValuedAttribute"),
        (0x0000001F, "UnsupportedAttribute"),
        (0x00000020, "AttributeInstanceNotFound"),
        (0x00000021, "AttributeNotFound"),
        (0x00000022, "AttributeReadOnly"),
        (0x00000023, "AttributeSingleValued"),
        (0x00000024, "BadCryptographicParameters"),
        (0x00000025, "BadPassword"),
        (0x00000026, "CodecError"),
        (0x00000028, "IllegalObjectType"),
        (0x00000029, "IncompatibleCryptographicUsageMask"),
        (0x0000002A, "InternalServerError"),
        (0x0000002B, "InvalidAsynchronousCorrelationValue"),
        (0x0000002C, "InvalidAttribute"),
        (0x0000002D, "InvalidAttributeValue"),
        (0x0000002E, "InvalidCorrelationValue"),
        (0x0000002F, "InvalidCSR"),
        (0x00000030, "InvalidObjectType"),
        (0x00000032, "KeyWrapTypeNotSupported"),
        (0x00000034, "MissingInitializationVector"),
        (0x00000035, "NonUniqueNameAttribute"),
        (0x00000036, "ObjectDestroyed"),
        (0x00000037, "ObjectNotFound"),
        (0x00000039, "NotAuthorised"),
        (0x0000003A, "ServerLimitExceeded"),
        (0x0000003B, "UnknownEnumeration"),
        (0x0000003C, "UnknownMessageExtension"),
        (0x0000003D, "UnknownTag"),
        (0x0000003E, "UnsupportedCryptographicParameters"),
        (0x0000003F, "UnsupportedProtocolVersion"),
        (0x00000040, "WrappingObjectArchived"),
        (0x00000041, "WrappingObjectDestroyed"),
        (0x00000042, "WrappingObjectNotFound"),
        (0x00000043, "WrongKeyLifecycleState"),
        (0x00000044, "ProtectionStorageUnavailable"),
        (0x00000045, "PKCS11CodecError"),
        (0x00000046, "PKCS11InvalidFunction"),
        (0x00000047, "PKCS11InvalidInterface"),
        (0x00000100, "GeneralFailure"),
    ],
};

/// Values of the ResultStatus enumeration.
pub static RESULT_STATUS: EnumTable = EnumTable {
    name: "ResultStatus",
    values: &[
        (0x00000000, "Success"),
        (0x00000001, "OperationFailed"),
        (0x00000002, "OperationPending"),
        (0x00000003, "OperationUndone"),
    ],
};

/// Values of the RevocationReasonCode enumeration.
pub static REVOCATION_REASON_CODE: EnumTable = EnumTable {
    name: "RevocationReasonCode",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "KeyCompromise"),
        (0x00000003, "CaCompromise"),
        (0x00000004, "AffiliationChanged"),
        (0x00000005, "Superseded"),
        (0x00000006, "CessationOfOperation"),
        (0x00000007, "PrivilegeWithdrawn"),
    ],
};

/// Values of the RngAlgorithm enumeration.
pub static RNG_ALGORITHM: EnumTable = EnumTable {
    name: "RngAlgorithm",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "FIPS186_2"),
        (0x00000003, "DRBG"),
        (0x00000004, "Nrbg"),
        (0x00000005, "ANSIX931"),
        (0x00000006, "ANSIX962"),
    ],
};

/// Values of the RngMode enumeration.
pub static RNG_MODE: EnumTable = EnumTable {
    name: "RngMode",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "SharedInstantiation"),
        (0x00000003, "NonSharedInstantiation"),
    ],
};

/// Values of the SecretDataType enumeration.
pub static SECRET_DATA_TYPE: EnumTable = EnumTable {
    name: "SecretDataType",
    values: &[(0x00000001, "Password"), (0x00000002, "Seed")],
};

/// Values of the ShreddingAlgorithm enumeration.
pub static SHREDDING_ALGORITHM: EnumTable = EnumTable {
    name: "ShreddingAlgorithm",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Cryptographic"),
        (0x00000003, "Unsupported"),
    ],
};

/// Values of the SplitKeyMethod enumeration.
pub static SPLIT_KEY_METHOD: EnumTable = EnumTable {
    name: "SplitKeyMethod",
    values: &[
        (0x00000001, "Xor"),
        (0x00000002, "PolynomialSharingGf2_16"),
        (0x00000003, "PolynomialSharingPrimeField"),
        (0x00000004, "PolynomialSharingGf2_8"),
    ],
};

/// Values of the State enumeration.
pub static STATE: EnumTable = EnumTable {
    name: "State",
    values: &[
        (0x00000001, "PreActive"),
        (0x00000002, "Active"),
        (0x00000003, "Deactivated"),
        (0x00000004, "Compromised"),
        (0x00000005, "Destroyed"),
        (0x00000006, "DestroyedCompromised"),
    ],
};

/// Values of the TicketType enumeration.
pub static TICKET_TYPE: EnumTable = EnumTable {
    name: "TicketType",
    values: &[(0x00000001, "Login")],
};

/// Values of the UniqueIdentifier enumeration.
pub static UNIQUE_IDENTIFIER: EnumTable = EnumTable {
    name: "UniqueIdentifier",
    values: &[
        (0x00000001, "IDPlaceholder"),
        (0x00000002, "Certify"),
        (0x00000003, "Create"),
        (0x00000004, "CreateKeyPair"),
        (0x00000005, "CreateKeyPairPrivateKey"),
        (0x00000006, "CreateKeyPairPublicKey"),
        (0x00000007, "CreateSplitKey"),
        (0x00000008, "DeriveKey"),
        (0x00000009, "Import"),
        (0x0000000A, "JoinSplitKey"),
        (0x0000000B, "Locate"),
        (0x0000000C, "Register"),
        (0x0000000D, "Rekey"),
        (0x0000000E, "Recertify"),
        (0x0000000F, "RekeyKeyPair"),
        (0x00000010, "RekeyKeyPairPrivateKey"),
        (0x00000011, "RekeyKeyPairPublicKey"),
    ],
};

/// Values of the UnwrapMode enumeration.
pub static UNWRAP_MODE: EnumTable = EnumTable {
    name: "UnwrapMode",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Processed"),
        (0x00000003, "NotProcessed"),
    ],
};

/// Values of the UsageLimitsUnit enumeration.
pub static USAGE_LIMITS_UNIT: EnumTable = EnumTable {
    name: "UsageLimitsUnit",
    values: &[(0x00000001, "Byte"), (0x00000002, "Object")],
};

/// Values of the ValidationAuthorityType enumeration.
pub static VALIDATION_AUTHORITY_TYPE: EnumTable = EnumTable {
    name: "ValidationAuthorityType",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "NISTCmvp"),
        (0x00000003, "CommonCriteria"),
    ],
};

/// Values of the ValidationType enumeration.
pub static VALIDATION_TYPE: EnumTable = EnumTable {
    name: "ValidationType",
    values: &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Hardware"),
        (0x00000003, "Software"),
        (0x00000004, "Firmware"),
        (0x00000005, "Hybrid"),
    ],
};

/// Values of the ValidityIndicator enumeration.
pub static VALIDITY_INDICATOR: EnumTable = EnumTable {
    name: "ValidityIndicator",
    values: &[
        (0x00000001, "Valid"),
        (0x00000002, "Invalid"),
        (0x00000003, "Unknown"),
    ],
};

/// Values of the WrappingMethod enumeration.
pub static WRAPPING_METHOD: EnumTable = EnumTable {
    name: "WrappingMethod",
    values: &[
        (0x00000001, "Encrypt"),
        (0x00000002, "MACSign"),
        (0x00000003, "EncryptThenMACSign"),
        (0x00000004, "MACSignThenEncrypt"),
        (0x00000005, "Tr31"),
    ],
};

/// Which tag's Enumeration values each table names, sorted by tag.
static ENUM_TAGS: &[(u32, &EnumTable)] = &[
    (0x420007, &ASYNCHRONOUS_INDICATOR),
    (0x42000E, &BATCH_ERROR_CONTINUATION_OPTION),
    (0x420011, &BLOCK_CIPHER_MODE),
    (0x420012, &CANCELLATION_RESULT),
    (0x420019, &CERTIFICATE_REQUEST_TYPE),
    (0x42001D, &CERTIFICATE_TYPE),
    (0x420024, &CREDENTIAL_TYPE),
    (0x420028, &CRYPTOGRAPHIC_ALGORITHM),
    (0x420031, &DERIVATION_METHOD),
    (0x420038, &HASHING_ALGORITHM),
    (0x420041, &KEY_COMPRESSION_TYPE),
    (0x420042, &KEY_FORMAT_TYPE),
    (0x42004B, &LINK_TYPE),
    (0x420054, &NAME_TYPE),
    (0x420057, &OBJECT_TYPE),
    (0x420059, &OPAQUE_DATA_TYPE),
    (0x42005C, &OPERATION),
    (0x42005F, &PADDING_METHOD),
    (0x420070, &PUT_FUNCTION),
    (0x420074, &QUERY_FUNCTION),
    (0x420075, &RECOMMENDED_CURVE),
    (0x42007E, &RESULT_REASON),
    (0x42007F, &RESULT_STATUS),
    (0x420082, &REVOCATION_REASON_CODE),
    (0x420083, &KEY_ROLE_TYPE),
    (0x420086, &SECRET_DATA_TYPE),
    (0x42008A, &SPLIT_KEY_METHOD),
    (0x42008D, &STATE),
    (0x420094, &UNIQUE_IDENTIFIER),
    (0x420098, &USAGE_LIMITS_UNIT),
    (0x42009B, &VALIDITY_INDICATOR),
    (0x42009E, &WRAPPING_METHOD),
    (0x4200A3, &ENCODING_OPTION),
    (0x4200AC, &OBJECT_GROUP_MEMBER),
    (0x4200AE, &DIGITAL_SIGNATURE_ALGORITHM),
    (0x4200BA, &KEY_VALUE_LOCATION_TYPE),
    (0x4200C1, &ALTERNATIVE_NAME_TYPE),
    (0x4200C2, &DATA),
    (0x4200C7, &ATTESTATION_TYPE),
    (0x4200DA, &RNG_ALGORITHM),
    (0x4200DB, &DRBG_ALGORITHM),
    (0x4200DC, &FIPS186_VARIATION),
    (0x4200E0, &VALIDATION_AUTHORITY_TYPE),
    (0x4200E5, &VALIDATION_TYPE),
    (0x4200EC, &PROFILE_NAME),
    (0x4200F2, &UNWRAP_MODE),
    (0x4200F3, &DESTROY_ACTION),
    (0x4200F4, &SHREDDING_ALGORITHM),
    (0x4200F5, &RNG_MODE),
    (0x4200F6, &CLIENT_REGISTRATION_METHOD),
    (0x4200F8, &KEY_WRAP_TYPE),
    (0x420101, &MASK_GENERATOR),
    (0x420102, &HASHING_ALGORITHM),
    (0x42013A, &NIST_KEY_TYPE),
    (0x420145, &PROTECTION_LEVEL),
    (0x42014A, &TICKET_TYPE),
    (0x420151, &ENDPOINT_ROLE),
    (0x420158, &ADJUSTMENT_TYPE),
    (0x420160, &INTEROP_FUNCTION),
];

/// The name of tag `tag`, if known.
pub fn tag_name(tag: u32) -> Option<&'static str> {
    TAGS.binary_search_by_key(&tag, |&(t, _)| t)
        .ok()
        .map(|i| TAGS[i].1)
}

/// The number of the tag named `name` (exact, case-sensitive), if known.
pub fn tag_by_name(name: &str) -> Option<u32> {
    TAGS.iter().find(|&&(_, n)| n == name).map(|&(t, _)| t)
}

/// The enumeration whose values an Enumeration item with tag `tag` carries, if known.
pub fn enum_table(tag: u32) -> Option<&'static EnumTable> {
    ENUM_TAGS
        .binary_search_by_key(&tag, |&(t, _)| t)
        .ok()
        .map(|i| ENUM_TAGS[i].1)
}

/// The name of value `value` of the enumeration carried by tag `tag`, if known.
pub fn enum_value_name(tag: u32, value: u32) -> Option<&'static str> {
    let table = enum_table(tag)?;
    table
        .values
        .binary_search_by_key(&value, |&(v, _)| v)
        .ok()
        .map(|i| table.values[i].1)
}

/// The value named `name` of the enumeration carried by tag `tag`, if known.
pub fn enum_value_by_name(tag: u32, name: &str) -> Option<u32> {
    enum_table(tag)?
        .values
        .iter()
        .find(|&&(_, n)| n == name)
        .map(|&(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        assert!(TAGS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ENUM_TAGS.windows(2).all(|w| w[0].0 < w[1].0));
        for (_, t) in ENUM_TAGS {
            assert!(t.values.windows(2).all(|w| w[0].0 < w[1].0), "{}", t.name);
            for (v, n) in t.values {
                assert_eq!(t.values.iter().filter(|(_, m)| m == n).count(), 1, "{n}");
                assert!(
                    !n.starts_with("0x")
                        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{v} {n}"
                );
            }
        }
        for (t, n) in TAGS {
            assert_eq!(tag_by_name(n), Some(*t));
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(tag_name(0x420078), Some("RequestMessage"));
        assert_eq!(
            tag_by_name("UniqueIdentifier"),
            Some(tag::UNIQUE_IDENTIFIER)
        );
        assert_eq!(enum_value_name(tag::OPERATION, 0x1F), Some("Encrypt"));
        assert_eq!(
            enum_value_name(tag::CRYPTOGRAPHIC_ALGORITHM, 3),
            Some("AES")
        );
        assert_eq!(enum_value_by_name(tag::BLOCK_CIPHER_MODE, "GCM"), Some(9));
        assert_eq!(
            enum_value_name(tag::RESULT_STATUS, 1),
            Some("OperationFailed")
        );
    }
}
