// RFC 8448 §5, HelloRetryRequest (x25519 offered, P-256 demanded; TLS_AES_128_GCM_SHA256). See README.md.
import { h } from './hex.ts';

export const clientX25519Private = h(`0e d0 2f 8e 81 17 ef c7 5c a7 ac 32 aa
  7e 34 ed a6 4c dc 0d da d1 54 a5 e8 52 89 f9 59 f6 32 04`);
export const clientX25519Public = h(`e8 e8 e3 f3 b9 3a 25 ed 97 a1 4a 7d ca cb
  8a 27 2c 62 88 e5 85 c6 48 4d 05 26 2f ca d0 62 ad 1f`);
export const clientHello1Record = h(
  '16030100b4010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d00170018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001',
);
export const helloRetryRequestRecord = h(
  '16030300b0020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c001301000084003300020017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304',
);
export const clientP256Private = h(`ab 54 73 46 7e 19 34 6c eb 0a 04 14 e4
  1d a2 1d 4d 24 45 bc 30 25 af e9 7c 4e 8d c8 d5 13 da 39`);
export const clientP256Public = h(`04 a6 da 73 92 ec 59 1e 17 ab fd 53 59 64
  b9 98 94 d1 3b ef b2 21 b3 de f2 eb e3 83 0e ac 8f 01 51 81 26
  77 c4 d6 d2 23 7e 85 cf 01 d6 91 0c fb 83 95 4e 76 ba 73 52 83
  05 34 15 98 97 e8 06 57 80`);
/** The second ClientHello record (517 octets), with the cookie and padding. */
export const clientHello2Record = h(
  '1603030200010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d001700180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
);

export const serverP256Private = h(`8c 51 06 01 f9 76 5b fb 8e d6 93 44 9a
  48 98 98 59 b5 cf a8 79 cb 9f 54 43 c4 1c 5f f1 06 34 ed`);
export const serverP256Public = h(`04 58 3e 05 4b 7a 66 67 2a e0 20 ad 9d 26
  86 fc c8 5b 5a d4 1a 13 4a 0f 03 ee 72 b8 93 05 2b d8 5b 4c 8d
  e6 77 6f 5b 04 ac 07 d8 35 40 ea b3 e3 d9 c5 47 bc 65 28 c4 31
  7d 29 46 86 09 3a 6c ad 7d`);
export const serverHelloRecord = h(
  '160303007b020000770303bb341d847fd789c47c387172dc0c9bf147fccacb5043d86ca4c598d3ff571b9800130100004f003300450017004104583e054b7a66672ae020ad9d2686fcc85b5ad41a134a0f03ee72b893052bd85b4c8de6776f5b04ac07d83540eab3e3d9c547bc6528c4317d294686093a6cad7d002b00020304',
);

export const earlySecret = h(`33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c
  e2 10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a`);
export const ecdheSecret = h(`c1 42 ce 13 ca 11 b5 c2 23 36 52 e6 3a d3 d9 78
  44 f1 62 1f bf b9 de 69 d5 47 dc 8f ed ea be b4`);
export const handshakeSecret = h(`ce 02 2e 5e 6e 81 e5 07 36 d7 73 f2 d3 ad fc
  e8 22 0d 04 9b f5 10 f0 db fa c9 27 ef 42 43 b1 48`);
/** Transcript-Hash(message_hash(ClientHello1), HelloRetryRequest, ClientHello2, ServerHello). */
export const helloHash = h(`8a a8 e8 28 ec 2f 8a 88 4f ec 95 a3 13 9d e0 1c
  15 a3 da a7 ff 5b fc 3f 4b fc c2 1b 43 8d 7b f8`);
export const clientHandshakeTrafficSecret = h(`15 8a a7 ab 88 55 07 35 82 b4 1d 67 4b 40
  55 ca bc c5 34 72 8f 65 93 14 86 1b 4e 08 e2 01 15 66`);
export const serverHandshakeTrafficSecret = h(`34 03 e7 81 e2 af 7b 65 08 da 28 57 4f 6e
  95 a1 ab f1 62 de 83 a9 79 27 c3 76 72 a4 a0 ce f8 a1`);
export const derivedForMaster = h(`ad 1c bc d3 a0 dc 70 53 ee b3 ed 3a 47 90
  1d 16 a9 fc 63 a7 3c 64 be b5 67 48 1a 7d fb 3a 2c b3`);
export const masterSecret = h(`11 31 54 5d 0b af 79 dd ce 9b 87 f0 69 45 78
  1a 57 dd 18 ef 37 8d cd 20 60 f8 f9 a5 69 02 7e d8`);
export const serverHandshakeKey = h('46 46 bf ac 17 12 c4 26 cd 78 d8 a2 4a 8a 6f 6b');
export const serverHandshakeIv = h('c7 d3 95 c0 8d 62 f2 97 d1 37 68 ea');

export const encryptedExtensions = h(`08 00 00 18 00 16 00 0a 00 08 00
  06 00 17 00 18 00 1d 00 1c 00 02 40 01 00 00 00 00`);
export const certificateVerify = h(
  '0f0000840804008033ab13d4462707231b5dcae6c8190b63d1dabc74f28c395370da0b07e5b83066d0246a31acd95df475bfd799a4a70d33ad93d3a317a9b2c0d237a5685b219e774112e391a247607d1aeff1bbd0a39f382ee1a5fe88ae99ec59228e6497e45d48ce275a6d5ef40d169fb6f9d33b052ed3dcdd6b5a48baafffbcb290128415bd38',
);
export const serverFinishedKey = h(`e7 f8 bb 3e a4 b6 c3 0c 47 10 b3 d0 9c 33
  13 65 81 17 e7 0b 09 7e 85 03 68 e2 51 0c a5 63 1f 74`);
export const serverFinished = h(`14 00 00 20 88 63 e6 bf b0 42 0a 92 7f a2
  7f 34 33 6a 70 ae 42 6e 96 8e 3e b8 84 94 5b 96 85 6d ba 39 76
  d1`);
/** EncryptedExtensions, Certificate (as in §3), CertificateVerify, Finished (667 octets). */
export const serverHandshakeRecord = h(
  '170303029699bee20baf5b7fc727bfab6223928a381e6d0cf9c4da653f9d2a7b23f7de11cce842d5cf75631763450ffb8b0cc1d238e658af7a12adc86243114ab14a1da2fae42621ce483fb6242eabfaad52566b02b31d2eddedefeb80e66a9900d5f973b40c4fdf74719ecf1b68d7f9c3b6ceb903ca13dd1bb8f8187ae33417e1d152522c5822a1a03ad52c838c55953d610222874cce8e1790b229a2aa0b53c8d377ee720182951dc6181dc5d90bd1f0105ed1e84aa5f75957c6661897079e5ea5007449e3197bdc7c9beeedddeafdd844afa5c315ecfe65e576afe909812880620ec7048b42d7f5c78d76f299d6d82534bdd8f512febc0ed3814aca470cd8000d3e1cb9962b052fbb950df683a52c2ba77ed3713b122937a6e5170964e2ab7969dcd980b3db9b458da7603124d6dc005e4d6e04b4d0c4baf3275db827dbba0a6db09672171fc057b3851d7e026841e2978fbd2346bbefdd0376bb1108fe9acc92189f5650aa5e85d8e8c7b67ac510dba003d3d7e16350bb66d45013efd44c9b607c0d318c4c7d1a1f5cbc57e20611804e3787d7b4a4b5f08ed8fd70bdaeade02260b12ab842ef690b4a3ee7911e841b374ecd5ebbbc2a54d047b600336dd7d0c88b4bc10e58ee6cb656de7247fa20d8e91deb84628608cf80615b62e96c1491c7ac3755eb6901405d3474fe1ac79d106a0cee56c2577fc88480f96cb6b8c681b7b68b53c146093908f350888175bdfb0b1e31ad61e30ba0adfe6d223aa03c0783b5001a57587c328a9afcfcfb978d1cd4328f7d9d60530e630befd96c0c816ee20b0100768ae2a6df51fc68f172740a79af11398ee3be1252491fa9c693479e877f94ab7c5f8cad480203e6ab7b87dd71e8a0729113df17f5eee86ce108d1d72007ec1cd13c85a6c149621e77b7d78d805a30f0be030c315e54',
);

export const serverFinishedHash = h(`50 f6 3c bf 36 b0 dd 04 9e 7a 0b a2 7d 64 55 74
  5e a2 aa ac 54 bb 16 7f 99 50 b2 b7 ce 95 09 da`);
export const clientApplicationTrafficSecret = h(`75 ec f4 b9 72 52 5a a0 dc d0 57 c9 94 4d
  4c d5 d8 26 71 d8 84 31 41 d7 dc 2a 4f f1 5a 21 dc 51`);
export const serverApplicationTrafficSecret = h(`5c 74 f8 7d f0 42 25 db 0f 82 09 c9 de 64
  29 e4 94 35 fd ef a7 ca d6 18 64 87 4d 12 f3 1c fc 8d`);
export const exporterMasterSecret = h(`7c 06 d3 ae 10 6a 3a 37 4a ce 48 37 b3 98
  5c ac 67 78 0a 6e 2c 5c 04 b5 83 19 d5 84 df 09 d2 23`);
export const serverApplicationKey = h('f2 7a 5d 97 bd 25 55 0c 48 23 b0 f3 e5 d2 93 88');
export const serverApplicationIv = h('0d d6 31 f7 b7 1c bb c7 97 c3 5f e7');
export const clientHandshakeKey = h('2f 1f 91 86 63 d5 90 e7 42 11 49 a2 9d 94 b0 b6');
export const clientHandshakeIv = h('41 4d 54 85 23 5e 1a 68 87 93 bd 74');
export const clientFinishedKey = h(`81 be 41 31 fb b9 b6 f4 47 14 50 84 6f 74
  fd 1e 68 c5 22 4b a7 c2 a8 67 7f 5c 53 ad 22 6f dc 13`);
export const clientFinished = h(`14 00 00 20 23 f5 2f db 07 09 a5 5b d7 f7
  9b 99 1f 25 48 40 87 bc fd 4d 43 80 b1 23 26 a5 2a 28 b2 e3 68
  e1`);
export const clientFinishedRecord = h(`17 03 03 00 35 d7 4f 19 23 c6 62 fd
  34 13 7c 6f 50 2f 3d d2 b9 3d 95 1d 1b 3b c9 7e 42 af e2 3c 31
  ab ea 92 fe 91 b4 74 99 9e 85 e3 b7 91 ce 25 2f e8 c3 e9 f9 39
  a4 12 0c b2`);
export const clientApplicationKey = h('a7 eb 2a 05 25 eb 43 31 d5 8f cb f9 f7 ca 2e 9c');
export const clientApplicationIv = h('86 e8 be 22 7c 1b d2 b3 e3 9c b4 44');
export const clientFinishedHash = h(`0e 8b 34 91 58 b8 55 fd cd 0c 11 db bc 4e 83 e4
  3c aa 6e 48 3c 6c 65 df 53 15 18 88 e5 01 65 f4`);
export const resumptionMasterSecret = h(`09 17 0c 6d 47 27 21 56 6f 9c f9 9b 08 69
  9d af f5 61 ec 8f b2 2d 5a 32 c3 f9 4c e0 09 b6 99 75`);
export const clientAlertRecord = h(`17 03 03 00 13 2e a6 cd f7 49 19 60
  23 e2 b3 a4 94 91 69 55 36 42 60 47`);
export const serverAlertRecord = h(`17 03 03 00 13 51 9f c5 07 5c b0 88
  43 49 75 9f f9 ef 6f 01 1b b4 c6 f2`);

/** RFC 8448 §6: a CertificateRequest (context empty, signature_algorithms only). */
export const certificateRequest = h(`0d 00 00 27 00 00 24 00 0d 00 20
  00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01 05 01 06
  01 02 01 04 02 05 02 06 02 02 02`);
