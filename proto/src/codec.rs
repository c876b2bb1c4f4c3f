//! The protobuf codec of every AEGIS service, client and server side.
//!
//! tonic's default codec gives every call an 8 KiB encode buffer and an 8 KiB decode buffer.
//! Almost every AEGIS message is a few hundred bytes, and an 8 KiB allocation misses glibc's
//! per-thread cache (chunks up to ~1 KiB): a leader profile at 1,000 clients spent ~2 % of its
//! CPU allocating and freeing those buffers, and 1,000 calls in flight held 16 MiB of them.
//! These start small and grow when a message needs more.

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Fits a put of a 256-byte value under a key of up to ~200 bytes, and stays within glibc's
/// per-thread cache.
pub const INITIAL_BUFFER_BYTES: usize = 512;

/// tonic's own default: a stream yields to the runtime after this much encoded data.
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

/// [`ProstCodec`] with small initial buffers.
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        SmallBufferCodec(std::marker::PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
