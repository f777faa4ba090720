export {
  DEFAULT_HEADER_TABLE_SIZE,
  decodeInteger,
  encodeInteger,
  encodeIntegerInto,
  encodeString,
  HeaderListTooLargeError,
  HpackDecoder,
  type HpackDecoderOptions,
  HpackEncoder,
  type HpackEncoderOptions,
  HpackReader,
  type IndexingChoice,
} from './codec.ts';
export {
  EOS,
  HUFFMAN_CODE_LENGTHS,
  HUFFMAN_CODES,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from './huffman.ts';
export {
  DynamicTable,
  ENTRY_OVERHEAD,
  entrySize,
  type HeaderField,
  STATIC_TABLE,
  STATIC_TABLE_LENGTH,
} from './table.ts';
