// The Go peer of bench/chan: the same two measurements on Go's channels.
// bench/chan builds it and runs it with GOMAXPROCS=1.
//
//	chan PINGPONG_ROUND_TRIPS THROUGHPUT_MESSAGES
//
// prints "pingpong_ns <ns per round trip>" and "throughput_mps <messages/s>".
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Two goroutines bouncing a value over two unbuffered channels.
func pingpong(n int) float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			panic("pingpong: wrong value back")
		}
	}
	elapsed := time.Since(start)
	close(ping)
	return float64(elapsed.Nanoseconds()) / float64(n)
}

// One producer, one consumer, capacity 128.
func throughput(n int) float64 {
	c, done := make(chan int, 128), make(chan int)
	go func() {
		sum := 0
		for v := range c {
			sum += v
		}
		done <- sum
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		c <- i
	}
	close(c)
	sum := <-done
	elapsed := time.Since(start)
	if sum != n*(n-1)/2 {
		panic("throughput: messages lost")
	}
	return float64(n) / elapsed.Seconds()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: chan PINGPONG_ROUND_TRIPS THROUGHPUT_MESSAGES")
		os.Exit(2)
	}
	trips, err1 := strconv.Atoi(os.Args[1])
	messages, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || trips < 1 || messages < 1 {
		fmt.Fprintln(os.Stderr, "chan: counts must be positive integers")
		os.Exit(2)
	}
	pingpong(trips / 10) // warm up
	throughput(messages / 10)
	fmt.Printf("pingpong_ns %f\n", pingpong(trips))
	fmt.Printf("throughput_mps %f\n", throughput(messages))
}
