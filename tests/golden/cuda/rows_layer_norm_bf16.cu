{ lambda ; a:bf16[5,768] b:bf16[768] c:bf16[768]. let
    d:bf16[5,768] = fused_cuda[kernel=rows_691331b5] a b c
  in (d,) }
// kernel 0
#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
// round to nearest even; a NaN becomes the quiet NaN of its sign (as ml_dtypes)
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(((u >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// lax.max/min of floats: a NaN operand wins and +0 is above -0 (CUDA's fmax/fmin drop NaN)
template <typename T> __device__ __forceinline__ T fg_max(T a, T b) {
  return a != a ? a : (b != b || b > a || (b == a && signbit(a))) ? b : a;
}
template <typename T> __device__ __forceinline__ T fg_min(T a, T b) {
  return a != a ? a : (b != b || b < a || (b == a && signbit(b))) ? b : a;
}
// integer division as XLA: x / 0 = -1 (all bits set), x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0
__device__ __forceinline__ int fg_div(int a, int b) {
  return b == 0 ? -1 : b == -1 ? (int)(0u - (unsigned int)a) : a / b;
}
__device__ __forceinline__ unsigned int fg_div(unsigned int a, unsigned int b) {
  return b == 0u ? 0xffffffffu : a / b;
}
__device__ __forceinline__ int fg_rem(int a, int b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
__device__ __forceinline__ unsigned int fg_rem(unsigned int a, unsigned int b) {
  return b == 0u ? a : a % b;
}
__device__ __forceinline__ int fg_abs(int a) {  // |MIN| wraps to MIN
  return a < 0 ? (int)(0u - (unsigned int)a) : a;
}
template <typename T> __device__ __forceinline__ T fg_sign(T x) {  // keeps -0 and NaN
  return x > 0 ? (T)1 : x < 0 ? (T)-1 : x;
}
template <typename T> __device__ __forceinline__ T fg_logistic(T x) {  // never overflows
  T e = exp(-fabs(x));
  return x >= 0 ? 1 / (e + 1) : e / (e + 1);
}
// shifts as XLA: the amount read as unsigned; at least the bit width gives 0 (or the sign)
__device__ __forceinline__ unsigned int fg_shl(unsigned int x, unsigned int s) {
  return s < 32u ? x << s : 0u;
}
__device__ __forceinline__ unsigned int fg_shr(unsigned int x, unsigned int s) {
  return s < 32u ? x >> s : 0u;
}
__device__ __forceinline__ int fg_sar(int x, unsigned int s) { return x >> (s < 32u ? s : 31u); }
// float -> integer as XLA: truncate, saturate out of range, NaN -> 0
__device__ __forceinline__ int fg_to_i32(double x) {
  return x != x ? 0 : x >= 2147483647.0 ? 2147483647 : x <= -2147483648.0 ? -2147483647 - 1
         : (int)x;
}
__device__ __forceinline__ unsigned int fg_to_u32(double x) {
  return x != x ? 0u : x >= 4294967295.0 ? 4294967295u : x <= 0.0 ? 0u : (unsigned int)x;
}
#define ADD(a, b) ((a) + (b))
// all threads of the block combine val with op; every thread gets the result
#define BLOCK_REDUCE(val, op, result) \
  red[threadIdx.x] = (val); __syncthreads(); \
  for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \
    __syncthreads(); } \
  float result = red[0]; __syncthreads();

extern "C" __global__ void rows_691331b5(const unsigned short* __restrict__ in0, const unsigned short* __restrict__ in1, const unsigned short* __restrict__ in2, unsigned short* __restrict__ out, long long rows) {
  __shared__ float red[256];
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    long long i0 = row;
    float v1 = 0.f;
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v3 = bf16_to_f32(in0[i0 * 768 + j]);
      float v4 = (float)(v3);
      v1 = ADD(v1, v4);
    }
    BLOCK_REDUCE(v1, ADD, v2)
    float v5 = (v2 / 768.0f);
    float v6 = bf16_to_f32(f32_to_bf16((float)(v5)));
    float v8 = 0.f;
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v10 = bf16_to_f32(in0[i0 * 768 + j]);
      float v11 = (v10 - v6);
      float v12 = (v11 * v11);
      float v13 = (float)(v12);
      v8 = ADD(v8, v13);
    }
    BLOCK_REDUCE(v8, ADD, v9)
    float v14 = (v9 / 768.0f);
    float v15 = bf16_to_f32(f32_to_bf16((float)(v14)));
    float v16 = (v15 + 1.0013580322265625e-05f);
    float v17 = (1 / sqrt(v16));
    for (long long j = threadIdx.x; j < 768; j += blockDim.x) {
      float v0 = bf16_to_f32(in0[i0 * 768 + j]);
      float v7 = (v0 - v6);
      float v18 = (v7 * v17);
      float v19 = bf16_to_f32(in1[j]);
      float v20 = (v18 * v19);
      float v21 = bf16_to_f32(in2[j]);
      float v22 = (v20 + v21);
      out[row * 768 + j] = f32_to_bf16(v22);
    }
  }
}
