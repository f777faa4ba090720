// RFC 8448 §3, Simple 1-RTT Handshake (TLS_AES_128_GCM_SHA256, x25519). See README.md.
import { h } from './hex.ts';

export const clientPrivate = h(`49 af 42 ba 7f 79 94 85 2d 71 3e f2 78
  4b cb ca a7 91 1d e2 6a dc 56 42 cb 63 45 40 e7 ea 50 05`);
export const clientPublic = h(`99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d
  ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c`);

export const clientHello = h(`01 00 00 c0 03 03 cb 34 ec b1 e7 81 63
  ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12 ec 18 a2 ef 62 83
  02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b
  00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00
  12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 23
  00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2
  3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a
  af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03
  02 03 08 04 08 05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06
  02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01`);
/** The record header in front of the ClientHello: legacy_record_version 0x0301. */
export const clientHelloRecordHeader = h('16 03 01 00 c4');

export const earlySecret = h(`33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c
  e2 10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a`);

export const serverPrivate = h(`b1 58 0e ea df 6d d5 89 b8 ef 4f 2d 56
  52 57 8c c8 10 e9 98 01 91 ec 8d 05 83 08 ce a2 16 a2 1e`);
export const serverPublic = h(`c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6
  72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f`);

export const serverHello = h(`02 00 00 56 03 03 a6 af 06 a4 12 18 60
  dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e
  d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88
  76 11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1
  dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04`);
export const serverHelloRecordHeader = h('16 03 03 00 5a');

/** Derive-Secret(early, "derived", "") — the salt of the handshake secret. */
export const derivedForHandshake = h(`6f 26 15 a1 08 c7 02 c5 67 8f 54 fc 9d ba
  b6 97 16 c0 76 18 9c 48 25 0c eb ea c3 57 6c 36 11 ba`);
/** The "info" (HkdfLabel) printed for that derivation. */
export const derivedInfo = h(`00 20 0d 74 6c 73 31 33 20 64 65 72 69 76 65 64
  20 e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4
  64 9b 93 4c a4 95 99 1b 78 52 b8 55`);
export const ecdheSecret = h(`8b d4 05 4f b5 5b 9d 63 fd fb ac f9 f0 4b 9f 0d
  35 e6 d6 3f 53 75 63 ef d4 62 72 90 0f 89 49 2d`);
export const handshakeSecret = h(`1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b
  01 04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac`);
/** Transcript-Hash(ClientHello, ServerHello). */
export const helloHash = h(`86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed
  d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8`);
export const clientHandshakeTrafficSecret = h(`b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e
  2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21`);
export const serverHandshakeTrafficSecret = h(`b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d
  37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38`);
export const derivedForMaster = h(`43 de 77 e0 c7 77 13 85 9a 94 4d b9 db 25
  90 b5 31 90 a6 5b 3e e2 e4 f1 2d d7 a0 bb 7c e2 54 b4`);
export const masterSecret = h(`18 df 06 84 3d 13 a0 8b f2 a4 49 84 4c 5f 8a
  47 80 01 bc 4d 4c 62 79 84 d5 a4 1d a8 d0 40 29 19`);

export const serverHandshakeKey = h('3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc');
export const serverHandshakeIv = h('5d 31 3e b2 67 12 76 ee 13 00 0b 30');
export const clientHandshakeKey = h('db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01');
export const clientHandshakeIv = h('5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f');

export const encryptedExtensions = h(`08 00 00 24 00 22 00 0a 00 14 00
  12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c
  00 02 40 01 00 00 00 00`);
export const certificate = h(
  '0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000',
);
export const certificateVerify = h(`0f 00 00 84 08 04 00 80 5a 74 7c
  5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a
  b3 ff 52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3 3a 5c 14 1a 07
  86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6 d3 0b
  be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 45 9e 46 44
  5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15 2a
  3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3`);
export const serverFinishedKey = h(`00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85
  c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8`);
export const serverFinished = h(`14 00 00 20 9b 9b 14 1d 90 63 37 fb d2 cb
  dc e7 1d f4 de da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07
  18`);
/** EncryptedExtensions..Finished in one protected record (679 octets). */
export const serverHandshakeRecord = h(
  '17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b',
);

/** Transcript-Hash(ClientHello..server Finished). */
export const serverFinishedHash = h(`96 08 10 2a 0f 1c cc 6d b6 25 0b 7b 7e 41 7b 1a
  00 0e aa da 3d aa e4 77 7a 76 86 c9 ff 83 df 13`);
export const clientApplicationTrafficSecret = h(`9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce
  65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5`);
export const serverApplicationTrafficSecret = h(`a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9
  50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43`);
export const exporterMasterSecret = h(`fe 22 f8 81 17 6e da 18 eb 8f 44 52 9e 67
  92 c5 0c 9a 3f 89 45 2f 68 d8 ae 31 1b 43 09 d3 cf 50`);
export const serverApplicationKey = h('9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56');
export const serverApplicationIv = h('cf 78 2b 88 dd 83 54 9a ad f1 e9 84');

export const clientFinishedKey = h(`b8 0a d0 10 15 fb 2f 0b d6 5f f7 d4 da 5d
  6b f8 3f 84 82 1d 1f 87 fd c7 d3 c7 5b 5a 7b 42 d9 c4`);
export const clientFinished = h(`14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a
  c1 fc eb e1 1a 03 9e c1 76 94 fa c6 e9 85 27 b6 42 f2 ed d5 ce
  61`);
export const clientFinishedRecord = h(`17 03 03 00 35 75 ec 4d c2 38 cc e6
  0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44
  d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7
  26 c4 05 46`);
export const clientApplicationKey = h('17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51');
export const clientApplicationIv = h('5b 78 92 3d ee 08 57 90 33 e5 23 d9');

/** Transcript-Hash(ClientHello..client Finished). */
export const clientFinishedHash = h(`20 91 45 a9 6e e8 e2 a1 22 ff 81 00 47 cc 95 26
  84 65 8d 60 49 e8 64 29 42 6d b8 7c 54 ad 14 3d`);
export const resumptionMasterSecret = h(`7d f2 35 f2 03 1d 2a 05 12 87 d0 2b 02 41
  b0 bf da f8 6c c8 56 23 1f 2d 5a ba 46 c4 34 ec 19 6c`);
/** HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce 00 00, 32). */
export const resumptionPsk = h(`4e cd 0e b6 ec 3b 4d 87 f5 d6 02 8f 92 2c
  a4 c5 85 1a 27 7f d4 13 11 c9 e6 2d 2c 94 92 e1 c4 f3`);

export const newSessionTicket = h(`04 00 00 c9 00 00 00 1e fa d6 aa
  c5 02 00 00 00 b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00
  00 26 2a 64 94 dc 48 6d 2c 8a 34 cb 33 fa 90 bf 1b 00 70 ad 3c
  49 88 83 c9 36 7c 09 a2 be 78 5a bc 55 cd 22 60 97 a3 a9 82 11
  72 83 f8 2a 03 a1 43 ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28
  27 db 27 9c ce 14 50 77 d4 54 a3 66 4d 4e 6d a4 d2 9e e0 37 25
  a6 a4 da fc d0 fc 67 d2 ae a7 05 29 51 3e 3d a2 67 7f a5 90 6c
  5b 3f 7d 8f 92 f2 28 bd a4 0d da 72 14 70 f9 fb f2 97 b5 ae a6
  17 64 6f ac 5c 03 27 2e 97 07 27 c6 21 a7 91 41 ef 5f 7d e6 50
  5e 5b fb c3 88 e9 33 43 69 40 93 93 4a e4 d3 57 00 08 00 2a 00
  04 00 00 04 00`);
export const newSessionTicketRecord = h(
  '17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f',
);

/** 00 01 02 .. 31: the application data both sides send. */
export const applicationData = Uint8Array.from({ length: 50 }, (_, i) => i);
export const clientApplicationRecord = h(`17 03 03 00 43 a2 3f 70 54 b6 2c 94
  d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b
  98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62
  92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4`);
export const serverApplicationRecord = h(`17 03 03 00 43 2e 93 7e 11 ef 4a c7
  40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3
  0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5
  f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d`);
/** close_notify: payload 01 00. */
export const clientAlertRecord = h(`17 03 03 00 13 c9 87 27 60 65 56 66
  b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3`);
export const serverAlertRecord = h(`17 03 03 00 13 b5 8f d6 71 66 eb f5
  99 d2 47 20 cf be 7e fa 7a 88 64 a9`);
